//go:build ignore

// Command modproxy writes a file-based Go module proxy (GOPROXY=file://DIR) that serves
// every module of this repository, as it is in the working tree, at one version: what a
// user's `go get` would download once that version is tagged. scripts/rehearse-go-get.sh
// uses it to rehearse a user's `go get` of each nested module with no network.
//
//	go run scripts/modproxy/main.go -out DIR -version v0.1.0
//
// A module's files are the files git tracks below its go.mod, less those of modules nested
// in it. Run it from the repository's root.
package main

import (
	"archive/zip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"unicode"
)

func main() {
	out := flag.String("out", "", "the proxy's directory (made if missing)")
	version := flag.String("version", "", "the version to serve every module at, as v0.1.0")
	flag.Parse()
	if *out == "" || !strings.HasPrefix(*version, "v") {
		log.Fatal("usage: go run scripts/modproxy/main.go -out DIR -version vX.Y.Z")
	}
	mods, err := modules(".")
	if err != nil {
		log.Fatal(err)
	}
	listed, err := exec.Command("git", "ls-files", "-z").Output()
	if err != nil {
		log.Fatalf("git ls-files: %v", err)
	}
	tracked := map[string]bool{}
	for _, name := range strings.Split(string(listed), "\x00") {
		tracked[filepath.FromSlash(name)] = true
	}
	for dir, path := range mods {
		if err := serve(*out, dir, path, *version, mods, tracked); err != nil {
			log.Fatalf("%s: %v", path, err)
		}
		fmt.Printf("%s@%s\n", path, *version)
	}
}

// modules returns the module path of every go.mod below root, by its directory.
func modules(root string) (map[string]string, error) {
	mods := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.Name() != "go.mod" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "module "); ok {
				mods[filepath.Dir(p)] = strings.TrimSpace(rest)
			}
		}
		return nil
	})
	return mods, err
}

// serve writes the module at dir, path, into the proxy at out as version: the files of
// tracked below dir.
func serve(out, dir, path, version string, mods map[string]string, tracked map[string]bool) error {
	at := filepath.Join(out, escape(path), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return err
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	info, _ := json.Marshal(struct{ Version, Time string }{version, time.Now().UTC().Format(time.RFC3339)})
	for name, data := range map[string][]byte{"list": []byte(version + "\n"), version + ".info": info, version + ".mod": gomod} {
		if err := os.WriteFile(filepath.Join(at, name), data, 0o644); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(at, version+".zip"))
	if err != nil {
		return err
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && (d.Name() == ".git" || mods[p] != "") {
				return filepath.SkipDir // another module's, or not source
			}
			return nil
		}
		if !d.Type().IsRegular() || !tracked[filepath.Clean(p)] {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		w, err := zw.Create(path + "@" + version + "/" + filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(w, src)
		return err
	})
	if err != nil {
		return err
	}
	return zw.Close()
}

// escape writes a module path as the proxy protocol does: an upper-case letter becomes
// '!' and its lower case.
func escape(path string) string {
	var b strings.Builder
	for _, r := range path {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
