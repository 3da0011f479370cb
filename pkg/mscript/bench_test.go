package mscript

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkScan measures Scan on real maintainer scripts of this machine
// (when installed) and on the committed seeds. It runs on every hook run
// that involves the script's package.
func BenchmarkScan(b *testing.B) {
	type script struct {
		name string
		body []byte
	}
	var scripts []script
	for _, n := range []string{"procps.postinst", "dbus.postinst", "dash.postinst", "python3.11.prerm", "openjdk-17-jre-headless:amd64.postinst", "libc6:amd64.postinst"} {
		if body, err := os.ReadFile("/var/lib/dpkg/info/" + n); err == nil {
			scripts = append(scripts, script{n, body})
		}
	}
	seeds, _ := filepath.Glob("testdata/fuzz/FuzzScan/seed-*")
	for _, f := range seeds {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		line := strings.SplitN(string(raw), "\n", 3)[1]
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(line, "string("), ")"))
		if err != nil {
			b.Fatalf("%s: %v", f, err)
		}
		scripts = append(scripts, script{filepath.Base(f), []byte(s)})
	}
	for _, sc := range scripts {
		b.Run(sc.name, func(b *testing.B) {
			b.SetBytes(int64(len(sc.body)))
			b.ReportAllocs()
			for b.Loop() {
				Scan(sc.name, sc.body)
			}
		})
	}
	if files := hostScripts(b); len(files) > 0 {
		var bodies [][]byte
		for _, f := range files {
			body, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			bodies = append(bodies, body)
		}
		b.Run("all-host-scripts", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for i, body := range bodies {
					Scan(files[i], body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(bodies)), "ns/script")
		})
	}
}
