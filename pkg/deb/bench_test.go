package deb

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The benchmarks read the fixtures and, when present in the test cache
// (TestRealDebsMatchDpkg and scripts/bench/deb.sh download them), real
// packages. scripts/bench/deb.sh compares whole runs with dpkg-deb.

func benchFiles(b *testing.B) map[string][]byte {
	files := map[string][]byte{}
	for _, name := range []string{"fixture_gzip.deb", "fixture_xz.deb", "fixture_xz-blocks.deb", "fixture_zstd.deb"} {
		files[name] = readFixture(b, name)
	}
	for _, pattern := range []string{"coreutils_*.deb", "linux-headers-*-common_*.deb", "libllvm15_*.deb"} {
		if m, _ := filepath.Glob(filepath.Join(cacheDir(b), pattern)); len(m) > 0 {
			if data, err := os.ReadFile(m[len(m)-1]); err == nil {
				files[filepath.Base(m[len(m)-1])] = data
			}
		}
	}
	return files
}

// BenchmarkReadInfo is the control-only read the dpkg wrapper does for
// every package of a transaction; the data member is never decompressed.
func BenchmarkReadInfo(b *testing.B) {
	for name, data := range benchFiles(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ReadInfo(bytes.NewReader(data), name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWalkData lists and hashes every file (MB/s of .deb read).
func BenchmarkWalkData(b *testing.B) {
	for name, data := range benchFiles(b) {
		if len(data) > 20<<20 && testing.Short() {
			continue
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				err := WalkData(bytes.NewReader(data), name, Options{Hashes: true}, func(*Entry) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
