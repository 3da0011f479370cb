package deb

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
)

// Malformed and hostile inputs: each must give a clear error (an *Error
// naming the member and the offset, matching the right sentinel), in
// bounded time and memory, and never a panic. The inputs are built here
// from the fixtures and small archives rather than committed.

// arHeaders lists the member headers of a well-formed archive.
func arHeaders(t testing.TB, b []byte) []arHeader {
	t.Helper()
	a := newArReader(bytes.NewReader(b), "")
	var hs []arHeader
	for {
		h, err := a.Next()
		if err == io.EOF {
			return hs
		}
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, *h)
	}
}

// patchSize overwrites the size field of the member whose header is at
// hoff.
func patchSize(b []byte, hoff int64, size string) []byte {
	b = bytes.Clone(b)
	copy(b[hoff+48:hoff+58], fmt.Sprintf("%-10s", size))
	return b
}

// nonSeekable hides the io.Seeker of a reader.
type nonSeekable struct{ io.Reader }

// readBoth runs ReadInfo and WalkData (with hashes) on in, seekable or not.
func readBoth(in []byte, seekable bool, opt Options) (infoErr, walkErr error) {
	var r io.Reader = bytes.NewReader(in)
	if !seekable {
		r = nonSeekable{r}
	}
	_, infoErr = ReadInfoOptions(r, "bad.deb", opt)
	r = bytes.NewReader(in)
	if !seekable {
		r = nonSeekable{r}
	}
	opt.Hashes = true
	walkErr = WalkData(r, "bad.deb", opt, func(e *Entry) error { return nil })
	return infoErr, walkErr
}

func checkError(t *testing.T, what string, err, sentinel error, msgs []string) {
	t.Helper()
	var e *Error
	if err == nil || !errors.Is(err, sentinel) || !errors.As(err, &e) {
		t.Errorf("%s = %v, want an *Error matching %v", what, err, sentinel)
		return
	}
	for _, m := range msgs {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("%s = %q, want it to contain %q", what, err, m)
		}
	}
	if !strings.HasPrefix(err.Error(), "deb: bad.deb: ") {
		t.Errorf("%s = %q, want it to start with \"deb: bad.deb: \"", what, err)
	}
}

func TestMalformed(t *testing.T) {
	good := readFixture(t, "fixture_gzip.deb")
	hs := arHeaders(t, good) // debian-binary, control.tar.gz, data.tar.gz
	bin := arMember{name: "debian-binary", data: []byte("2.0\n")}
	ctl := arMember{name: "control.tar.gz", data: controlTarGz(t)}
	data := arMember{name: "data.tar.gz", data: gz(t, makeTar(t, dir("./"), file("./usr/x", "x")))}
	tarGz := func(es ...tarEntry) []byte { return gz(t, makeTar(t, es...)) }
	withControl := func(es ...tarEntry) []byte {
		return buildAr(bin, arMember{name: "control.tar.gz", data: tarGz(es...)}, data)
	}
	pax := file("./usr/pax", "x")
	pax.hdr.Format = tar.FormatPAX
	pax.hdr.PAXRecords = map[string]string{"path": "./usr/pax"}
	sparse := file("./usr/cont", "x")
	sparse.hdr.Typeflag = tar.TypeCont

	tests := []struct {
		name      string
		in        []byte
		opt       Options
		want      error
		msgs      []string
		dataOnly  bool // the problem is in the data member: ReadInfo succeeds
		infoOnly  bool // the problem is in the control member: WalkData, which skips it, succeeds
		slowLimit time.Duration
		// What a non-seekable input gives instead, when different.
		streamInfo, streamWalk     error
		streamMsgs, streamWalkMsgs []string
	}{
		{name: "empty file", in: nil, want: ErrFormat, msgs: []string{"at offset 0", "empty file"}},
		{name: "wrong magic", in: append([]byte("!<arch>\r"), good[8:]...), want: ErrFormat, msgs: []string{"at offset 0", "bad ar magic"}},
		{name: "not an archive", in: []byte("Package: x\nVersion: 1\n"), want: ErrFormat, msgs: []string{"bad ar magic"}},
		{name: "no members", in: []byte(arMagic), want: ErrFormat, msgs: []string{"empty ar archive"}},
		{name: "missing debian-binary", in: buildAr(ctl, data), want: ErrFormat, msgs: []string{"control.tar.gz (at offset 8)", "the first member must be debian-binary"}},
		{name: "format 3.0", in: buildAr(arMember{name: "debian-binary", data: []byte("3.0\n")}, ctl, data), want: ErrUnsupported, msgs: []string{"debian-binary (at offset 8)", "format version 3.0"}},
		{name: "format without newline", in: buildAr(arMember{name: "debian-binary", data: []byte("2.0")}, ctl, data), want: ErrFormat, msgs: []string{"no newline"}},
		{name: "format not a version", in: buildAr(arMember{name: "debian-binary", data: []byte("2.x\n")}, ctl, data), want: ErrFormat, msgs: []string{`invalid format version "2.x"`}},
		{name: "oversize debian-binary", in: buildAr(arMember{name: "debian-binary", data: bytes.Repeat([]byte("2.0\n"), 1000)}, ctl, data), want: ErrFormat, msgs: []string{"4000 bytes is too large"}},
		{name: "unknown data compression", in: buildAr(bin, ctl, arMember{name: "data.tar.rar", data: []byte("x")}), want: ErrUnsupported, msgs: []string{"data.tar.rar (at offset ", `unknown compression ".rar"`}},
		{name: "bzip2 control member", in: buildAr(bin, arMember{name: "control.tar.bz2", data: []byte("BZh")}, data), want: ErrUnsupported, msgs: []string{"control.tar.bz2 (at offset 72)", "unknown compression"}},
		{name: "data before control", in: buildAr(bin, data, ctl), want: ErrFormat, msgs: []string{"data.tar.gz (at offset 72)", "unexpected member before control.tar"}},
		{name: "duplicate control", in: buildAr(bin, ctl, ctl, data), want: ErrFormat, msgs: []string{"control.tar.gz (at offset", "second control member"}},
		{name: "duplicate debian-binary", in: buildAr(bin, bin, ctl, data), want: ErrFormat, msgs: []string{"debian-binary (at offset 72)", "unexpected member before control.tar"}},
		{name: "unknown member", in: buildAr(bin, ctl, arMember{name: "evil", data: []byte("x")}, data), want: ErrFormat, msgs: []string{"evil (at offset", "unexpected member before data.tar"}},
		{name: "missing control", in: buildAr(bin), want: ErrFormat, msgs: []string{"missing control.tar member"}},
		{name: "missing data", in: buildAr(bin, ctl), want: ErrFormat, msgs: []string{"missing data.tar member"}},
		{name: "empty data member", in: buildAr(bin, ctl, arMember{name: "data.tar.gz"}), want: ErrFormat, msgs: []string{"data.tar.gz (at offset", "empty member"}},
		{name: "negative size", in: patchSize(good, hs[1].HeaderOffset, "-5"), want: ErrFormat, msgs: []string{"control.tar.gz (at offset 72)", `ar size field "-5`}},
		{name: "huge size", in: patchSize(good, hs[1].HeaderOffset, "9999999999"), want: ErrFormat, msgs: []string{"control.tar.gz (at offset 72)", "member of 9999999999 bytes extends past the end of the file"},
			// Without the file size, the control member's size is first
			// met by the control limit, or by the end of the input.
			streamInfo: ErrLimit, streamMsgs: []string{"control.tar.gz (at offset 132)", "control member of 9999999999 bytes exceeds"},
			streamWalk: ErrFormat, streamWalkMsgs: []string{"control.tar.gz (at offset 132)", "truncated member: 4670 of 9999999999 bytes"}},
		{name: "non-numeric size", in: patchSize(good, hs[2].HeaderOffset, "0x10"), want: ErrFormat, msgs: []string{"data.tar.gz (at offset", `ar size field "0x10`}},
		{name: "size too small", in: patchSize(good, hs[1].HeaderOffset, "100"), want: ErrFormat, msgs: []string{"(at offset "}},
		{name: "dotdot in data", in: debWithData(t, dir("./"), file("./usr/../../etc/shadow", "x")), want: ErrInsecurePath, msgs: []string{"data.tar.gz (at offset", "./usr/../../etc/shadow", `path contains ".."`}, dataOnly: true},
		{name: "absolute path in data", in: debWithData(t, file("/etc/shadow", "x")), want: ErrInsecurePath, msgs: []string{"/etc/shadow: malformed archive: insecure path: absolute path"}, dataOnly: true},
		{name: "hard link out of the root", in: debWithData(t, file("./a", "x"), link(tar.TypeLink, "./b", "../../etc/shadow")), want: ErrInsecurePath, msgs: []string{"./b: hard link target", `path contains ".."`}, dataOnly: true},
		{name: "absolute hard link", in: debWithData(t, link(tar.TypeLink, "./b", "/etc/shadow")), want: ErrInsecurePath, msgs: []string{"./b: hard link target", "absolute path"}, dataOnly: true},
		{name: "PAX header", in: debWithData(t, dir("./"), pax), want: ErrUnsupported, msgs: []string{"./usr/pax", "PAX extended header"}, dataOnly: true},
		{name: "contiguous file type", in: debWithData(t, sparse), want: ErrUnsupported, msgs: []string{"tar entry type '7'"}, dataOnly: true},
		{name: "symlink without target", in: debWithData(t, link(tar.TypeSymlink, "./l", "")), want: ErrFormat, msgs: []string{"./l: malformed archive: symlink without a target"}, dataOnly: true},
		{name: "data not gzip", in: buildAr(bin, ctl, arMember{name: "data.tar.gz", data: []byte("not gzip at all")}), want: ErrFormat, msgs: []string{"data.tar.gz (at offset", "gzip"}, dataOnly: true},
		{name: "data not tar", in: buildAr(bin, ctl, arMember{name: "data.tar", data: bytes.Repeat([]byte("x"), 1024)}), want: ErrFormat, msgs: []string{"data.tar (at offset", "tar:"}, dataOnly: true},
		{name: "dotdot in control", in: withControl(file("./control", testControl), file("./../x", "y")), want: ErrInsecurePath, msgs: []string{"control.tar.gz (at offset 132): ./../x"}, infoOnly: true},
		{name: "no control file", in: withControl(file("./postinst", "#!/bin/sh\n")), want: ErrFormat, msgs: []string{"control.tar.gz (at offset 132): malformed archive: no control file"}, infoOnly: true},
		{name: "two paragraphs", in: withControl(file("./control", testControl+"\nPackage: y\n")), want: ErrFormat, msgs: []string{"control: malformed archive: more than one paragraph"}, infoOnly: true},
		{name: "no Package field", in: withControl(file("./control", "Version: 1\n")), want: ErrFormat, msgs: []string{"no Package field"}, infoOnly: true},
		{name: "CRLF control", in: withControl(file("./control", "Package: x\r\n")), want: ErrFormat, msgs: []string{"control:1: CRLF"}, infoOnly: true},
		{name: "duplicate control file", in: withControl(file("./control", testControl), file("control", testControl)), want: ErrFormat, msgs: []string{"duplicate control file"}, infoOnly: true},
		{name: "symlink control file", in: withControl(link(tar.TypeSymlink, "./control", "/etc/passwd")), want: ErrUnsupported, msgs: []string{"./control", "is a symlink, not a regular file"}, infoOnly: true},
		{name: "control member over the limit", in: good, opt: Options{MaxControlSize: 100}, want: ErrLimit, msgs: []string{"control.tar.gz (at offset 132)", "control member of", "exceeds the control size limit (Options.MaxControlSize) of 100 bytes"}, infoOnly: true},
		{name: "control file over the limit", in: withControl(file("./control", testControl+"Description: "+strings.Repeat("x", 4000)+"\n")), opt: Options{MaxControlSize: 2000}, want: ErrLimit, msgs: []string{"./control: limit exceeded: control file of 4062 bytes exceeds"}, infoOnly: true},
		{name: "control file claiming 8 GiB", in: buildAr(bin, arMember{name: "control.tar", data: hugeTarHeader(t, "./control", 8<<30)}, data), want: ErrLimit, msgs: []string{"control.tar (at offset 132): ./control: limit exceeded: control file of 8589934592 bytes"}, infoOnly: true},
		{name: "decompression bomb", in: readFixture(t, "bomb_zstd.deb"), want: ErrLimit, msgs: []string{"data.tar.zst (at offset", "decompressed size exceeds 1000 times the compressed size of 33112 bytes, the expansion debseal allows: a decompression bomb?"}, dataOnly: true, slowLimit: 5 * time.Second},
		{name: "bomb under the absolute cap", in: readFixture(t, "bomb_zstd.deb"), opt: Options{MaxExpansion: -1, MaxDataSize: 100 << 20}, want: ErrLimit, msgs: []string{"decompressed size exceeds the data size limit (Options.MaxDataSize) of 104857600 bytes"}, dataOnly: true, slowLimit: 5 * time.Second},
		{name: "corrupt xz data", in: flipByte(readFixture(t, "fixture_xz.deb"), "data.tar.xz", 200), want: ErrFormat, msgs: []string{"data.tar.xz (at offset", "xz: block 0"}, dataOnly: true},
		{name: "corrupt gzip trailer", in: flipByte(good, "data.tar.gz", -6), want: ErrFormat, msgs: []string{"data.tar.gz (at offset", "gzip: invalid checksum"}, dataOnly: true},
		{name: "corrupt xz block check", in: flipByte(readFixture(t, "fixture_xz-blocks.deb"), "data.tar.xz", 12+16+347+1+2), want: ErrFormat, msgs: []string{"xz: block 0: check mismatch"}, dataOnly: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, seekable := range []bool{true, false} {
				start := time.Now()
				infoErr, walkErr := readBoth(tt.in, seekable, tt.opt)
				if d, limit := time.Since(start), max(tt.slowLimit, time.Second); d > limit {
					t.Errorf("took %v, want less than %v", d, limit)
				}
				mode := map[bool]string{true: "seekable", false: "stream"}[seekable]
				wantInfo, infoMsgs, wantWalk, walkMsgs := tt.want, tt.msgs, tt.want, tt.msgs
				if !seekable && tt.streamInfo != nil {
					wantInfo, infoMsgs, wantWalk, walkMsgs = tt.streamInfo, tt.streamMsgs, tt.streamWalk, tt.streamWalkMsgs
				}
				if tt.dataOnly {
					if infoErr != nil {
						t.Errorf("ReadInfo(%s) = %v, want success (the problem is in the data member)", mode, infoErr)
					}
				} else {
					checkError(t, "ReadInfo("+mode+")", infoErr, wantInfo, infoMsgs)
				}
				if tt.infoOnly {
					if walkErr != nil {
						t.Errorf("WalkData(%s) = %v, want success (it skips the control member)", mode, walkErr)
					}
				} else {
					checkError(t, "WalkData("+mode+")", walkErr, wantWalk, walkMsgs)
				}
			}
		})
	}
}

// hugeTarHeader is an uncompressed tar whose only entry claims size bytes
// (and has none).
func hugeTarHeader(t testing.TB, name string, size int64) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, Format: tar.FormatGNU}); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	return b.Bytes() // unterminated on purpose
}

// flipByte returns deb with one byte of member changed, at off from the
// member's start (from its end if negative).
func flipByte(deb []byte, member string, off int64) []byte {
	a := newArReader(bytes.NewReader(deb), "")
	for {
		h, err := a.Next()
		if err != nil {
			panic("no member " + member)
		}
		if h.Name == member {
			if off < 0 {
				off += h.Size
			}
			deb = bytes.Clone(deb)
			deb[h.Offset+off] ^= 0x55
			return deb
		}
	}
}

// TestTruncated cuts well-formed packages at every member boundary, in the
// middle of every header and of every member: WalkData must fail with a
// clear error every time, and so must ReadInfo unless the cut is in the
// data member (which it does not read) of a stream.
func TestTruncated(t *testing.T) {
	for _, name := range []string{"fixture_gzip.deb", "fixture_xz-blocks.deb", "fixture_zstd.deb", "fixture_extra-members.deb"} {
		good := readFixture(t, name)
		var dataStart int64 = -1
		var cuts []int64
		for _, h := range arHeaders(t, good) {
			if strings.HasPrefix(h.Name, "data.tar") {
				dataStart = h.HeaderOffset
			}
			if dataStart >= 0 && h.HeaderOffset > dataStart {
				break // members after data.tar are never read
			}
			cuts = append(cuts, h.HeaderOffset, h.HeaderOffset+30, h.Offset, h.Offset+h.Size/2, h.Offset+h.Size-1)
		}
		cuts = append(cuts, 0, 3)
		for _, cut := range cuts {
			in := good[:cut]
			for _, seekable := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/%d/seekable=%v", name, cut, seekable), func(t *testing.T) {
					infoErr, walkErr := readBoth(in, seekable, Options{})
					checkError(t, "WalkData", walkErr, ErrFormat, []string{"offset"})
					if seekable || cut < dataStart+arHeaderSize {
						checkError(t, "ReadInfo", infoErr, ErrFormat, []string{"offset"})
					}
					if cut > 8 && !errors.Is(walkErr, io.ErrUnexpectedEOF) && !strings.Contains(walkErr.Error(), "missing") &&
						!strings.Contains(walkErr.Error(), "extends past the end") {
						t.Errorf("WalkData = %v, want a truncation error", walkErr)
					}
				})
			}
		}
	}
}

// TestDuplicateDataMember: dpkg ignores members after data.tar, but a
// second data (or control) member there is refused: tools that read the
// last one would see other contents than dpkg installs. Other trailing
// members stay ignored (fixture_extra-members.deb).
func TestDuplicateDataMember(t *testing.T) {
	bin := arMember{name: "debian-binary", data: []byte("2.0\n")}
	ctl := arMember{name: "control.tar.gz", data: controlTarGz(t)}
	first := arMember{name: "data.tar.gz", data: gz(t, makeTar(t, file("./first", "1")))}
	second := arMember{name: "data.tar.xz", data: gz(t, makeTar(t, file("./second", "2")))}
	ctl2 := arMember{name: "control.tar.gz", data: controlTarGz(t)}
	for _, tt := range []struct {
		name    string
		members []arMember
	}{
		{"data twice", []arMember{bin, ctl, first, second}},
		{"control after data", []arMember{bin, ctl, first, ctl2}},
		{"data after a trailing member", []arMember{bin, ctl, first, {name: "zz-note", data: []byte("x")}, second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, seekable := range []bool{true, false} {
				var r io.Reader = bytes.NewReader(buildAr(tt.members...))
				if !seekable {
					r = struct{ io.Reader }{r}
				}
				err := WalkData(r, "dup.deb", Options{}, func(e *Entry) error { return nil })
				var de *Error
				if !errors.Is(err, ErrFormat) || !errors.As(err, &de) || de.Offset == 0 || !strings.Contains(err.Error(), "duplicate") {
					t.Errorf("WalkData(%s, seekable=%v) = %v; want a format error naming the duplicate and its offset", tt.name, seekable, err)
				}
			}
		})
	}
}

// TestBombMemory: with the ratio limit off, a bomb is read to the
// absolute limit in constant memory (nothing buffers the output).
func TestBombMemory(t *testing.T) {
	b := readFixture(t, "bomb_zstd.deb")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := WalkData(bytes.NewReader(b), "bomb.deb", Options{MaxExpansion: -1, MaxDataSize: 512 << 20}, func(*Entry) error { return nil })
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("WalkData(bomb) = %v, want ErrLimit", err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("reading 512 MiB of the bomb allocated %d KiB", alloc>>10)
	if alloc > 64<<20 {
		t.Errorf("reading 512 MiB of the bomb allocated %d MiB in total, want at most 64", alloc>>20)
	}
}

// patchXZDict sets the LZMA2 dictionary property of the first block of
// the data member to p (40 is 4 GiB - 1) and fixes the header's CRC32.
func patchXZDict(t *testing.T, deb []byte, p byte) []byte {
	t.Helper()
	var off int64 = -1
	for _, h := range arHeaders(t, deb) {
		if h.Name == "data.tar.xz" {
			off = h.Offset
		}
	}
	if off < 0 {
		t.Fatal("no data.tar.xz")
	}
	deb = bytes.Clone(deb)
	blk := deb[off+12:] // after the stream header
	hsize := (int(blk[0]) + 1) * 4
	// Filter flags: ID 0x21, properties size 1, then the property.
	i := bytes.Index(blk[:hsize], []byte{0x21, 0x01})
	if i < 0 {
		t.Fatal("no LZMA2 filter flags in the first block header")
	}
	blk[i+2] = p
	binary.LittleEndian.PutUint32(blk[hsize-4:], crc32.ChecksumIEEE(blk[:hsize-4]))
	return deb
}

// TestXZHostileDictionary: a block header asking for a 4 GiB dictionary
// decodes with a dictionary of the block's size, not 4 GiB.
func TestXZHostileDictionary(t *testing.T) {
	deb := patchXZDict(t, readFixture(t, "fixture_xz.deb"), 40)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n := 0
	err := WalkData(bytes.NewReader(deb), "dict.deb", Options{}, func(*Entry) error { n++; return nil })
	runtime.ReadMemStats(&after)
	if err != nil || n == 0 {
		t.Fatalf("WalkData = %d entries, %v; want the fixture's entries", n, err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB", alloc>>10)
	if alloc > 32<<20 {
		t.Errorf("allocated %d MiB, want the dictionary capped to the block size", alloc>>20)
	}
}

// TestCallbackError: fn's error stops the walk, is returned as is, and no
// goroutine is left reading.
func TestCallbackError(t *testing.T) {
	stop := errors.New("stop")
	for _, name := range []string{"fixture_xz-blocks.deb", "fixture_gzip.deb"} {
		before := runtime.NumGoroutine()
		err := WalkDataFile(fixture(t, name), Options{}, func(*Entry) error { return stop })
		if err != stop {
			t.Errorf("WalkDataFile(%s) = %v, want fn's error", name, err)
		}
		for i := 0; i < 100 && runtime.NumGoroutine() > before; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			t.Errorf("%d goroutines left after WalkDataFile(%s) returned", n-before, name)
		}
	}
}

// bigBlockDeb builds a .deb whose data.tar.xz is one xz block of more than
// xzMaxBlock bytes, which is decoded streaming rather than in memory.
func bigBlockDeb(t *testing.T, xzArgs ...string) (deb []byte, bigSum [32]byte) {
	t.Helper()
	testutil.RequireCommand(t, "xz")
	big := bytes.Repeat([]byte("debseal streams big xz blocks\n"), (xzMaxBlock+(4<<20))/30)
	tarball := makeTar(t, dir("./"), file("./big", string(big)), file("./small", "x"))
	cmd := exec.Command("xz", append(xzArgs, "-c")...)
	cmd.Stdin = bytes.NewReader(tarball)
	data, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return buildAr(arMember{name: "debian-binary", data: []byte("2.0\n")}, arMember{name: "control.tar.gz", data: controlTarGz(t)},
		arMember{name: "data.tar.xz", data: data}), sha256.Sum256(big)
}

func TestXZBigBlock(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "sizes in the header", args: []string{"-T2", "--block-size=64MiB", "-1"}},
		{name: "no sizes", args: []string{"-T1", "-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deb, want := bigBlockDeb(t, tt.args...)
			var got []string
			err := WalkData(bytes.NewReader(deb), "big.deb", Options{Hashes: true}, func(e *Entry) error {
				got = append(got, e.Path)
				if e.Path == "/big" && e.SHA256 != want {
					t.Errorf("/big: sha256 %x, want %x", e.SHA256, want)
				}
				return nil
			})
			if err != nil || strings.Join(got, " ") != "/ /big /small" {
				t.Fatalf("WalkData = %q, %v; want / /big /small", got, err)
			}
			// The output limit holds on the streaming path too.
			err = WalkData(bytes.NewReader(deb), "big.deb", Options{MaxDataSize: 1 << 20}, func(*Entry) error { return nil })
			if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "data.tar.xz (at offset") {
				t.Errorf("WalkData(MaxDataSize 1 MiB) = %v, want ErrLimit", err)
			}
		})
	}
	// Without sizes, a streamed block's dictionary cannot be capped by the
	// block size. With an output limit (the default expansion bound), it is
	// capped by that: nothing can refer further back than the output
	// allowed, so the data decodes in bounded memory. Without any limit, a
	// header asking for 4 GiB is refused.
	deb, want := bigBlockDeb(t, "-T1", "-1")
	deb = patchXZDict(t, deb, 40)
	err := WalkData(bytes.NewReader(deb), "dict.deb", Options{Hashes: true}, func(e *Entry) error {
		if e.Path == "/big" && e.SHA256 != want {
			t.Errorf("/big with a 4 GiB dictionary header: sha256 %x, want %x", e.SHA256, want)
		}
		return nil
	})
	if err != nil {
		t.Errorf("WalkData(4 GiB dictionary, default limits) = %v, want the data decoded in bounded memory", err)
	}
	err = WalkData(bytes.NewReader(deb), "dict.deb", Options{MaxExpansion: -1, MaxDataSize: -1}, func(*Entry) error { return nil })
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "LZMA2 dictionary of 4294967295 bytes") {
		t.Errorf("WalkData(4 GiB dictionary, no limits) = %v, want ErrLimit", err)
	}
}
