package eventbus

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEGuaranteesNameTheirTests: every guarantee in the README's Guarantees section
// names the tests that check it, and every name it gives is a test of this package, so a
// renamed or deleted test cannot leave a guarantee unchecked without failing here.
func TestREADMEGuaranteesNameTheirTests(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "\n## Guarantees\n")
	if start < 0 {
		t.Fatal("README.md has no Guarantees section")
	}
	section = section[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	tests := map[string]bool{}
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Test") {
				tests[fn.Name.Name] = true
			}
		}
	}
	name := regexp.MustCompile(`\bTest[A-Z]\w*`)
	bullets := strings.Split(section, "\n- ")[1:]
	if len(bullets) < 9 {
		t.Fatalf("the Guarantees section has %d guarantees; want the 9 it had when this test was written", len(bullets))
	}
	for _, g := range bullets {
		title, _, _ := strings.Cut(strings.TrimPrefix(g, "**"), ".")
		names := name.FindAllString(g, -1)
		if len(names) == 0 {
			t.Errorf("guarantee %q names no test", title)
		}
		for _, n := range names {
			if !tests[n] {
				t.Errorf("guarantee %q names %s, which is not a test of this package", title, n)
			}
		}
	}
}
