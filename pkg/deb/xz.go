package deb

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"sync"

	"github.com/ulikunitz/xz/lzma"
)

// The xz container is parsed here and only the LZMA2 data of each block is
// handed to a decoder: XZ Embedded's Go port for blocks held in memory
// (xzblock.go), ulikunitz/xz (lzma.Reader2) for blocks too big to hold.
// ulikunitz's own xz.Reader decodes one block after the other on one
// core, about 2.4x slower than liblzma;
// dpkg-deb decodes the independent blocks of a multi-block stream (dpkg's
// threaded xz writes 24 MiB blocks) on several threads. We do the same:
// the blocks of a stream are delimited while reading it sequentially (from
// the sizes in the block headers, or by walking the LZMA2 chunk headers when
// a block header has no sizes), decoded by a pool of goroutines, and
// delivered in order. This works on a plain io.Reader (a pipe from apt), so
// the xz index at the end of the stream is not needed up front; it is
// checked against the blocks when reached.
//
// Memory stays bounded: a block is decoded in memory only if it is at most
// xzMaxBlock bytes (compressed and uncompressed), and at most
// workers+2 blocks are in flight. A bigger block is decoded in a streaming
// fashion by the reading goroutine, in order, with the dictionary capped.
//
// Like dpkg (liblzma without LZMA_CONCATENATED), only the first stream is
// decoded; whatever follows it in the member is ignored.

const (
	xzMaxBlock      = 32 << 20  // bigger blocks are not decoded in memory
	xzMaxInlineDict = 128 << 20 // dictionary bound for streamed blocks (the xz presets stop at 64 MiB)
	xzChunk         = 256 << 10 // output chunk of a streamed block
	xzChunkDepth    = 16        // chunks a streamed block may decode ahead
)

var (
	xzMagic       = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}
	xzFooterMagic = []byte{'Y', 'Z'}
	crc64Table    = crc64.MakeTable(crc64.ECMA)
	// xzCheckSizes maps a check ID to its size (xz file format 2.1.1.2).
	xzCheckSizes = [16]int{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}
)

const (
	xzCheckNone   = 0x00
	xzCheckCRC32  = 0x01
	xzCheckCRC64  = 0x04
	xzCheckSHA256 = 0x0A
)

func xzFormat(format string, args ...any) error {
	return fmt.Errorf("%w: xz: "+format, append([]any{ErrFormat}, args...)...)
}

// xzOut is the output of one block, in order: chunks, then the block's
// error (set before chunks is closed).
type xzOut struct {
	chunks chan []byte
	err    error
}

// xzJob is one block for a worker.
type xzJob struct {
	out   *xzOut
	comp  []byte // the block's LZMA2 chunks, end marker included
	usize int64
	dict  int // the dictionary the block needs: its header's, or its output's size if smaller
	check byte
	want  []byte // the stored check
	index int    // block number, for messages
}

type xzReader struct {
	src  *bufio.Reader
	outs chan *xzOut   // one per block, in stream order; closed at the end
	jobs chan *xzJob   // to the workers
	stop chan struct{} // closed by Close
	wg   sync.WaitGroup
	// maxDict is the largest dictionary a block header asked for (for
	// tests, read after Close).
	maxDict int
	// Output allowed (-1: no limit): blocks are not decoded ahead past it,
	// so a bomb of many blocks costs no more than the limit.
	limit    int64
	limitErr func() error
	total    int64 // uncompressed bytes of the blocks scanned so far

	// consumer side
	cur   *xzOut
	chunk []byte // current chunk, recycled when read
	buf   []byte // its unread part
	err   error
	once  sync.Once
}

func newXZReader(src *bufio.Reader, p decodeParams) *xzReader {
	workers := max(p.workers, 1)
	x := &xzReader{
		src:      src,
		limit:    p.limit,
		limitErr: p.limitErr,
		outs:     make(chan *xzOut, workers),
		jobs:     make(chan *xzJob),
		stop:     make(chan struct{}),
	}
	x.wg.Add(1 + workers)
	go x.produce()
	for range workers {
		go x.work()
	}
	return x
}

func (x *xzReader) Read(p []byte) (int, error) {
	for len(x.buf) == 0 {
		if x.chunk != nil {
			putBuf(x.chunk)
			x.chunk = nil
		}
		if x.err != nil {
			return 0, x.err
		}
		if x.cur == nil {
			o, ok := <-x.outs
			if !ok {
				x.err = io.EOF
				continue
			}
			x.cur = o
		}
		c, ok := <-x.cur.chunks
		if !ok {
			if x.cur.err != nil {
				x.err = x.cur.err
			}
			x.cur = nil
			continue
		}
		x.chunk, x.buf = c, c
	}
	n := copy(p, x.buf)
	x.buf = x.buf[n:]
	return n, nil
}

// Close stops the goroutines and waits for them: when it returns, nothing
// reads from the source any more.
func (x *xzReader) Close() error {
	x.once.Do(func() {
		close(x.stop)
		x.wg.Wait()
		if x.chunk != nil {
			putBuf(x.chunk)
			x.chunk = nil
		}
		if x.err == nil {
			x.err = errors.New("xz: read after Close")
		}
	})
	return nil
}

func (x *xzReader) stopped() bool {
	select {
	case <-x.stop:
		return true
	default:
		return false
	}
}

// emit queues the output of the next block; false when stopped.
func (x *xzReader) emit(o *xzOut) bool {
	select {
	case x.outs <- o:
		return true
	case <-x.stop:
		return false
	}
}

func (x *xzReader) produce() {
	defer x.wg.Done()
	defer close(x.outs)
	defer close(x.jobs)
	if err := x.stream(); err != nil {
		o := &xzOut{chunks: make(chan []byte), err: err}
		close(o.chunks)
		x.emit(o)
	}
}

func (x *xzReader) work() {
	defer x.wg.Done()
	for j := range x.jobs {
		j.out.err = x.decodeJob(j)
		putBuf(j.comp)
		close(j.out.chunks)
	}
}

func truncated(err error, what string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return xzFormat("truncated %s: %w", what, io.ErrUnexpectedEOF)
	}
	return err
}

// stream reads the first xz stream of the member.
func (x *xzReader) stream() error {
	var h [12]byte
	if _, err := io.ReadFull(x.src, h[:]); err != nil {
		return truncated(err, "stream header")
	}
	if !bytes.Equal(h[:6], xzMagic) {
		return xzFormat("bad stream header magic % x", h[:6])
	}
	if crc32.ChecksumIEEE(h[6:8]) != binary.LittleEndian.Uint32(h[8:]) {
		return xzFormat("stream header CRC32 mismatch")
	}
	if h[6] != 0 || h[7]&0xF0 != 0 {
		return fmt.Errorf("%w: xz: stream flags %#02x%02x", ErrUnsupported, h[6], h[7])
	}
	check := h[7]
	switch check {
	case xzCheckNone, xzCheckCRC32, xzCheckCRC64, xzCheckSHA256:
	default:
		return fmt.Errorf("%w: xz: check type %#x", ErrUnsupported, check)
	}
	var seen xzIndexHash
	for n := 0; ; n++ {
		if x.stopped() {
			return nil
		}
		b, err := x.src.ReadByte()
		if err != nil {
			return truncated(err, "block header")
		}
		if b == 0 {
			return x.index(&seen, h[6:8])
		}
		if err := x.block(n, b, check, &seen); err != nil {
			return err
		}
	}
}

// block reads block number n, whose header starts with the size byte
// first, and decodes it or hands it to a worker.
func (x *xzReader) block(n int, first, check byte, seen *xzIndexHash) error {
	hsize := (int(first) + 1) * 4
	hdr := make([]byte, hsize)
	hdr[0] = first
	if _, err := io.ReadFull(x.src, hdr[1:]); err != nil {
		return truncated(err, "block header")
	}
	if crc32.ChecksumIEEE(hdr[:hsize-4]) != binary.LittleEndian.Uint32(hdr[hsize-4:]) {
		return xzFormat("block %d: header CRC32 mismatch", n)
	}
	flags := hdr[1]
	if flags&0x3C != 0 {
		return fmt.Errorf("%w: xz: block %d: header flags %#02x", ErrUnsupported, n, flags)
	}
	p := hdr[2 : hsize-4]
	csizeHdr, usizeHdr := int64(-1), int64(-1)
	if flags&0x40 != 0 {
		v, k := vli(p)
		if k <= 0 || v == 0 {
			return xzFormat("block %d: bad compressed size", n)
		}
		csizeHdr, p = int64(v), p[k:]
	}
	if flags&0x80 != 0 {
		v, k := vli(p)
		if k <= 0 {
			return xzFormat("block %d: bad uncompressed size", n)
		}
		usizeHdr, p = int64(v), p[k:]
	}
	if nf := int(flags&3) + 1; nf != 1 {
		return fmt.Errorf("%w: xz: block %d: a chain of %d filters (only LZMA2 alone, as dpkg-deb and xz write by default)", ErrUnsupported, n, nf)
	}
	id, k := vli(p)
	if k <= 0 {
		return xzFormat("block %d: bad filter flags", n)
	}
	p = p[k:]
	if id != 0x21 {
		return fmt.Errorf("%w: xz: block %d: filter %#x (only LZMA2 is supported)", ErrUnsupported, n, id)
	}
	psize, k := vli(p)
	if k <= 0 || psize != 1 || len(p) < k+1 {
		return xzFormat("block %d: bad LZMA2 filter properties", n)
	}
	dict, ok := lzma2Dict(p[k])
	if !ok {
		return xzFormat("block %d: bad LZMA2 dictionary size %#x", n, p[k])
	}
	x.maxDict = max(x.maxDict, dict)
	for _, c := range p[k+1:] {
		if c != 0 {
			return xzFormat("block %d: non-zero header padding", n)
		}
	}

	initial := 1 << 20
	if csizeHdr > 0 && csizeHdr <= xzMaxBlock {
		initial = int(csizeHdr)
	}
	comp, usize, whole, err := scanLZMA2(x.src, getBuf(initial)[:0], x.stop)
	if err != nil {
		putBuf(comp)
		return fmt.Errorf("block %d: %w", n, err)
	}
	if x.stopped() {
		putBuf(comp)
		return nil
	}
	if x.total += usize; x.limit >= 0 && x.total > x.limit && x.limitErr != nil {
		putBuf(comp)
		return x.limitErr()
	}
	// The block's output is queued now, before it is decoded, to keep
	// the order; from here on errors are reported there.
	out := &xzOut{}
	fail := func(err error) error {
		if comp != nil {
			putBuf(comp)
		}
		out.err = err
		close(out.chunks)
		return err
	}
	var csize int64
	var sum []byte
	if whole {
		// Room for the whole output: the worker never waits for the
		// reader, and the reader can start on the first chunk.
		out.chunks = make(chan []byte, usize/xzChunk+2)
		if !x.emit(out) {
			putBuf(comp)
			return nil
		}
		csize = int64(len(comp))
	} else {
		// Too big to hold: decode it here, streaming, in order.
		out.chunks = make(chan []byte, xzChunkDepth)
		if !x.emit(out) {
			putBuf(comp)
			return nil
		}
		if usizeHdr >= 0 && int64(dict) > usizeHdr {
			dict = int(max(usizeHdr, lzma.MinDictCap))
		}
		// Nothing can refer further back than the output allowed, so a
		// bigger dictionary is never used: do not allocate it (a hostile
		// header asking for 128 MiB otherwise costs that much memory).
		if x.limit >= 0 && int64(dict) > x.limit {
			dict = int(max(x.limit, lzma.MinDictCap))
		}
		if dict > xzMaxInlineDict {
			return fail(fmt.Errorf("%w: xz: block %d: LZMA2 dictionary of %d bytes (at most %d accepted)", ErrLimit, n, dict, xzMaxInlineDict))
		}
		cr := &countReader{r: io.MultiReader(bytes.NewReader(comp), x.src)}
		usize, sum, err = x.decode(cr, dict, check, usizeHdr, out.chunks)
		putBuf(comp)
		comp = nil
		if err != nil {
			return fail(fmt.Errorf("%w: xz: block %d: %w", ErrFormat, n, err))
		}
		csize = cr.n
	}
	if csizeHdr >= 0 && csizeHdr != csize {
		return fail(xzFormat("block %d: compressed size %d, header says %d", n, csize, csizeHdr))
	}
	if usizeHdr >= 0 && usizeHdr != usize {
		return fail(xzFormat("block %d: uncompressed size %d, header says %d", n, usize, usizeHdr))
	}
	// Block padding, then the check.
	var tail [3 + 64]byte
	padding := int((4 - csize%4) % 4)
	csum := xzCheckSizes[check]
	if _, err := io.ReadFull(x.src, tail[:padding+csum]); err != nil {
		return fail(truncated(err, fmt.Sprintf("block %d padding and check", n)))
	}
	for _, c := range tail[:padding] {
		if c != 0 {
			return fail(xzFormat("block %d: non-zero block padding", n))
		}
	}
	want := tail[padding : padding+csum]
	seen.add(uint64(hsize)+uint64(csize)+uint64(csum), uint64(usize))
	if !whole {
		if !bytes.Equal(sum, want) {
			return fail(xzFormat("block %d: check mismatch (corrupt data)", n))
		}
		close(out.chunks)
		return nil
	}
	j := &xzJob{out: out, comp: comp, usize: usize, dict: int(min(int64(dict), usize)), check: check, want: bytes.Clone(want), index: n}
	select {
	case x.jobs <- j:
		return nil
	case <-x.stop:
		putBuf(comp)
		return nil
	}
}

// decodeJob decodes a block held in memory, on a worker.
func (x *xzReader) decodeJob(j *xzJob) error {
	sum, err := x.decodeBlock(j.comp, j.usize, j.dict, j.check, j.out.chunks)
	switch {
	case err != nil:
		return fmt.Errorf("%w: xz: block %d: %w", ErrFormat, j.index, err)
	case !bytes.Equal(sum, j.want):
		return xzFormat("block %d: check mismatch (corrupt data)", j.index)
	}
	return nil
}

// decode decodes one block's LZMA2 data from r into chunks sent to out,
// and returns the uncompressed size and the check of the data as xz
// stores it. It fails once the output exceeds limit (when not negative).
func (x *xzReader) decode(r io.Reader, dict int, check byte, limit int64, out chan<- []byte) (usize int64, sum []byte, err error) {
	d, err := lzma.Reader2Config{DictCap: max(dict, lzma.MinDictCap)}.NewReader2(r)
	if err != nil {
		return 0, nil, err
	}
	h := newXZCheck(check)
	for {
		b := getBuf(xzChunk)
		n, err := d.Read(b)
		if n > 0 {
			usize += int64(n)
			if limit >= 0 && usize > limit {
				putBuf(b)
				return 0, nil, fmt.Errorf("more than the %d bytes of the block's headers", limit)
			}
			if h != nil {
				h.Write(b[:n])
			}
			select {
			case out <- b[:n]:
			case <-x.stop:
				putBuf(b)
				return 0, nil, errors.New("stopped")
			}
		} else {
			putBuf(b)
		}
		if err == io.EOF {
			return usize, xzCheckSum(h, check), nil
		}
		if err != nil {
			return 0, nil, err
		}
	}
}

// index reads and verifies the index and the stream footer.
func (x *xzReader) index(seen *xzIndexHash, flags []byte) error {
	cr := &crcByteReader{r: x.src, h: crc32.NewIEEE()}
	cr.h.Write([]byte{0}) // the index indicator, already read
	cr.n = 1
	count, err := readVLI(cr)
	if err != nil {
		return truncated(err, "index")
	}
	if count != seen.count {
		return xzFormat("index lists %d blocks, the stream has %d", count, seen.count)
	}
	var idx xzIndexHash
	for range count {
		unpadded, err := readVLI(cr)
		if err != nil {
			return truncated(err, "index")
		}
		usize, err := readVLI(cr)
		if err != nil {
			return truncated(err, "index")
		}
		idx.add(unpadded, usize)
	}
	if !idx.equal(seen) {
		return xzFormat("index does not match the blocks")
	}
	for cr.n%4 != 0 {
		c, err := cr.ReadByte()
		if err != nil {
			return truncated(err, "index")
		}
		if c != 0 {
			return xzFormat("non-zero index padding")
		}
	}
	want := cr.h.Sum32()
	size := cr.n + 4
	var f [4 + 12]byte
	if _, err := io.ReadFull(x.src, f[:]); err != nil {
		return truncated(err, "index CRC32 and stream footer")
	}
	if binary.LittleEndian.Uint32(f[:4]) != want {
		return xzFormat("index CRC32 mismatch")
	}
	foot := f[4:]
	if crc32.ChecksumIEEE(foot[4:10]) != binary.LittleEndian.Uint32(foot[:4]) {
		return xzFormat("stream footer CRC32 mismatch")
	}
	if backward := (int64(binary.LittleEndian.Uint32(foot[4:8])) + 1) * 4; backward != size {
		return xzFormat("stream footer says the index has %d bytes, it has %d", backward, size)
	}
	if !bytes.Equal(foot[8:10], flags) || !bytes.Equal(foot[10:12], xzFooterMagic) {
		return xzFormat("bad stream footer")
	}
	return nil
}

// scanLZMA2 copies one block's LZMA2 chunks from src into buf, up to and
// including the end marker, walking the chunk headers (LZMA2 has no other
// framing). It stops early, with whole false, once the block exceeds
// xzMaxBlock compressed or uncompressed: the caller then streams the rest.
func scanLZMA2(src *bufio.Reader, buf []byte, stop <-chan struct{}) (_ []byte, usize int64, whole bool, err error) {
	for chunks := 0; ; chunks++ {
		if len(buf) > xzMaxBlock || usize > xzMaxBlock {
			return buf, usize, false, nil
		}
		if chunks%64 == 63 {
			select {
			case <-stop:
				return buf, usize, false, nil
			default:
			}
		}
		c, err := src.ReadByte()
		if err != nil {
			return buf, 0, false, truncated(err, "LZMA2 data")
		}
		buf = append(buf, c)
		var hlen int
		switch {
		case c == 0x00:
			return buf, usize, true, nil
		case c == 0x01 || c == 0x02: // uncompressed chunk
			hlen = 2
		case c >= 0xC0: // LZMA chunk with new properties
			hlen = 5
		case c >= 0x80: // LZMA chunk
			hlen = 4
		default:
			return buf, 0, false, xzFormat("invalid LZMA2 chunk type %#02x", c)
		}
		start := len(buf)
		buf = append(buf, make([]byte, hlen)...)
		if _, err := io.ReadFull(src, buf[start:]); err != nil {
			return buf, 0, false, truncated(err, "LZMA2 chunk header")
		}
		h := buf[start:]
		var data int
		if c < 0x80 {
			data = int(binary.BigEndian.Uint16(h)) + 1
			usize += int64(data)
		} else {
			usize += int64(c&0x1F)<<16 + int64(binary.BigEndian.Uint16(h)) + 1
			data = int(binary.BigEndian.Uint16(h[2:])) + 1
		}
		start = len(buf)
		buf = grow(buf, data)
		if _, err := io.ReadFull(src, buf[start:]); err != nil {
			return buf, 0, false, truncated(err, "LZMA2 chunk")
		}
	}
}

// grow extends b by n bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := getBuf(max(2*cap(b), len(b)+n))
		copy(nb, b)
		putBuf(b)
		b = nb[:len(b)]
	}
	return b[:len(b)+n]
}

// lzma2Dict decodes the LZMA2 dictionary size property.
func lzma2Dict(p byte) (int, bool) {
	switch {
	case p > 40:
		return 0, false
	case p == 40:
		return 0xFFFFFFFF, true
	}
	return (2 | int(p&1)) << (p/2 + 11), true
}

// vli decodes a variable-length integer (xz format 1.2) from b and returns
// it with the number of bytes used, or 0 bytes if it is malformed.
func vli(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < 9 && i < len(b); i++ {
		c := b[i]
		v |= uint64(c&0x7F) << (7 * i)
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return 0, 0 // not the shortest encoding
			}
			return v, i + 1
		}
	}
	return 0, 0
}

func readVLI(r io.ByteReader) (uint64, error) {
	var v uint64
	for i := 0; i < 9; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7F) << (7 * i)
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return 0, xzFormat("malformed variable-length integer")
			}
			return v, nil
		}
	}
	return 0, xzFormat("malformed variable-length integer")
}

// xzIndexHash summarises block records so that the blocks seen and the
// index can be compared in constant memory (as liblzma's index_hash does).
type xzIndexHash struct {
	count, unpadded, usize uint64
	h                      hash.Hash
}

func (x *xzIndexHash) add(unpadded, usize uint64) {
	if x.h == nil {
		x.h = sha256.New()
	}
	x.count++
	x.unpadded += unpadded
	x.usize += usize
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], unpadded)
	binary.LittleEndian.PutUint64(b[8:], usize)
	x.h.Write(b[:])
}

func (x *xzIndexHash) equal(y *xzIndexHash) bool {
	if x.count != y.count || x.unpadded != y.unpadded || x.usize != y.usize {
		return false
	}
	if x.h == nil || y.h == nil {
		return x.h == nil && y.h == nil
	}
	return bytes.Equal(x.h.Sum(nil), y.h.Sum(nil))
}

func newXZCheck(check byte) hash.Hash {
	switch check {
	case xzCheckCRC32:
		return crc32.NewIEEE()
	case xzCheckCRC64:
		return crc64.New(crc64Table)
	case xzCheckSHA256:
		return sha256.New()
	}
	return nil
}

// xzCheckSum returns the check as xz stores it (CRCs little-endian).
func xzCheckSum(h hash.Hash, check byte) []byte {
	switch check {
	case xzCheckCRC32:
		return binary.LittleEndian.AppendUint32(nil, h.(hash.Hash32).Sum32())
	case xzCheckCRC64:
		return binary.LittleEndian.AppendUint64(nil, h.(hash.Hash64).Sum64())
	case xzCheckSHA256:
		return h.Sum(nil)
	}
	return []byte{}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type crcByteReader struct {
	r *bufio.Reader
	h hash.Hash32
	n int64
}

func (c *crcByteReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.h.Write([]byte{b})
		c.n++
	}
	return b, err
}

// Buffers of decoded blocks and compressed blocks are recycled: a 24 MiB
// allocation per block would otherwise dominate the garbage collector's
// work.
var (
	bigPool   sync.Pool // *[]byte of at least 1 MiB
	smallPool sync.Pool // *[]byte of xzChunk
)

func getBuf(n int) []byte {
	if n <= xzChunk {
		if p, ok := smallPool.Get().(*[]byte); ok {
			return (*p)[:n]
		}
		return make([]byte, n, xzChunk)
	}
	if p, ok := bigPool.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]byte, n, max(n, 1<<20))
}

func putBuf(b []byte) {
	switch c := cap(b); {
	case c == xzChunk:
		b = b[:0]
		smallPool.Put(&b)
	case c >= 1<<20 && c <= 2*xzMaxBlock:
		b = b[:0]
		bigPool.Put(&b)
	}
}
