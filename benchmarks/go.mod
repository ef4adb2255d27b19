module github.com/ae30fb47/eventbus/benchmarks

go 1.25.0

require (
	github.com/ThreeDotsLabs/watermill v1.5.1
	github.com/ae30fb47/eventbus v0.1.0
	github.com/asaskevich/EventBus v0.0.0-20200907212545-49d423059eef
	github.com/cskr/pubsub/v2 v2.0.2
	github.com/gookit/event v1.2.0
	github.com/kelindar/event v1.5.2
	github.com/mustafaturan/bus/v3 v3.0.3
	github.com/vardius/message-bus v1.1.5
	go.uber.org/goleak v1.3.0
)

require (
	github.com/ae30fb47/eventbus/bridge/watermill v0.1.0
	github.com/google/uuid v1.6.0 // indirect
	github.com/gookit/goutil v0.7.1 // indirect
	github.com/lithammer/shortuuid/v3 v3.0.7 // indirect
	github.com/oklog/ulid v1.3.1 // indirect
	github.com/pkg/errors v0.9.1 // indirect
)

replace github.com/ae30fb47/eventbus => ../

replace github.com/ae30fb47/eventbus/bridge/watermill => ../bridge/watermill
