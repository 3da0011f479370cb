//go:build unix

package verity

import (
	"bytes"
	"crypto/sha256"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The benchmarks hash the same data with the Hasher and with plain
// crypto/sha256, in the same process, and report besides Go's wall-clock
// MB/s the CPU-time throughput (cpu-MB/s, from getrusage): the machines
// this runs on are shared, and CPU time is what compares fairly.

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchHash runs hash over data, reporting MB/s both ways.
func benchHash(b *testing.B, data []byte, hash func([]byte)) {
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	start, ops := cpuTime(), 0
	for b.Loop() {
		hash(data)
		ops++
	}
	if cpu := cpuTime() - start; cpu > 0 {
		b.ReportMetric(float64(ops)*float64(len(data))/1e6/cpu.Seconds(), "cpu-MB/s")
	}
}

// benchSizes are a large file and the sizes most package files have.
var benchSizes = []int{16 << 20, 100 << 10, 4 << 10, 300}

func BenchmarkHasher(b *testing.B) {
	for _, size := range benchSizes {
		data := content{kind: "random", size: size}.bytes()
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			h := New()
			benchHash(b, data, func(p []byte) {
				h.Reset()
				// 64 KiB writes, as from a read loop.
				for ; len(p) > 0; p = p[min(len(p), 64<<10):] {
					h.Write(p[:min(len(p), 64<<10)])
				}
				h.Sum()
			})
		})
	}
}

// BenchmarkSum is Sum on a reader: a new Hasher and io.Copy's buffer
// for every file.
func BenchmarkSum(b *testing.B) {
	for _, size := range benchSizes {
		data := content{kind: "random", size: size}.bytes()
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			benchHash(b, data, func(p []byte) {
				if _, _, err := Sum(bytes.NewReader(p)); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkSHA256 is the raw speed the Hasher is measured against.
func BenchmarkSHA256(b *testing.B) {
	for _, size := range benchSizes {
		data := content{kind: "random", size: size}.bytes()
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			h := sha256.New()
			var sum [sha256.Size]byte
			benchHash(b, data, func(p []byte) {
				h.Reset()
				for ; len(p) > 0; p = p[min(len(p), 64<<10):] {
					h.Write(p[:min(len(p), 64<<10)])
				}
				h.Sum(sum[:0])
			})
		})
	}
}
