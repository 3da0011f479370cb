package deb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	xzembedded "github.com/therootcompany/xz"
)

// Blocks held in memory (nearly all of them: dpkg-deb's threaded xz writes
// blocks of 24 MiB or less) are decoded with github.com/therootcompany/xz,
// a Go port of XZ Embedded, instead of ulikunitz/xz's LZMA2 reader.
// Measured here on libllvm15's data.tar.xz (22 MiB, 112 MiB decoded), one
// core: liblzma 1.18 s, XZ Embedded's port 1.86 s, ulikunitz 2.88 s. The
// port only reads whole xz streams, so each block is wrapped in a minimal
// single-block stream of its own: a stream header without a check (the
// block's real check is verified here, as before), a block header with
// the block's LZMA2 data and a dictionary no larger than the block's
// output (nothing can refer further back, and no bigger buffer is
// allocated), the data, and an index and footer saying what the block is.
// Blocks too big to hold in memory are still decoded by ulikunitz/xz as
// they stream in.

// decodeBlock decodes one block's LZMA2 data held in memory (comp), of
// usize bytes of output and a dictionary of dict bytes, into chunks sent
// to out; it returns the check of the output as xz stores it.
func (x *xzReader) decodeBlock(comp []byte, usize int64, dict int, check byte, out chan<- []byte) ([]byte, error) {
	stream, err := singleBlockStream(comp, usize, dict)
	if err != nil {
		return nil, err
	}
	d, err := xzembedded.NewReader(stream, 0)
	if err != nil {
		return nil, err
	}
	h := newXZCheck(check)
	var n int64
	for {
		b := getBuf(xzChunk)
		k, err := io.ReadFull(d, b)
		if k > 0 {
			n += int64(k)
			if n > usize {
				putBuf(b)
				return nil, fmt.Errorf("more output than the %d bytes its chunk headers say", usize)
			}
			if h != nil {
				h.Write(b[:k])
			}
			select {
			case out <- b[:k]:
			case <-x.stop:
				putBuf(b)
				return nil, errStopped
			}
		} else {
			putBuf(b)
		}
		switch err {
		case nil:
			continue
		case io.EOF, io.ErrUnexpectedEOF:
			if n != usize {
				return nil, fmt.Errorf("%d bytes of output, its chunk headers say %d", n, usize)
			}
			return xzCheckSum(h, check), nil
		default:
			return nil, err
		}
	}
}

var errStopped = fmt.Errorf("stopped")

// singleBlockStream wraps raw LZMA2 data in an xz stream of one block
// (xz file format 1.2.0: stream header, block header, data, padding, no
// check, index, stream footer). Its dictionary is the smallest LZMA2 can
// say that holds dict bytes.
func singleBlockStream(comp []byte, usize int64, dict int) (io.Reader, error) {
	if usize < 0 {
		return nil, fmt.Errorf("negative block size")
	}
	dictProp := byte(40)
	for p := byte(0); p < 40; p++ {
		if d, _ := lzma2Dict(p); d >= dict {
			dictProp = p
			break
		}
	}
	le := binary.LittleEndian
	var head bytes.Buffer
	// Stream header: magic, flags (check type 0: none), CRC32 of flags.
	head.Write(xzMagic)
	flags := []byte{0, 0}
	head.Write(flags)
	head.Write(le.AppendUint32(nil, crc32.ChecksumIEEE(flags)))
	// Block header: size, flags (one filter, no sizes), LZMA2 with its
	// dictionary property, padding to a multiple of four, CRC32.
	bh := []byte{0, 0x00, 0x21, 0x01, dictProp}
	for (len(bh)+4)%4 != 0 {
		bh = append(bh, 0)
	}
	bh[0] = byte((len(bh)+4)/4 - 1)
	bh = le.AppendUint32(bh, crc32.ChecksumIEEE(bh))
	head.Write(bh)
	// After the data: block padding, then the index (one record: the
	// unpadded size and the uncompressed size) and the footer.
	var tail bytes.Buffer
	tail.Write(make([]byte, (4-len(comp)%4)%4))
	idx := []byte{0}
	idx = binary.AppendUvarint(idx, 1)
	idx = binary.AppendUvarint(idx, uint64(len(bh)+len(comp)))
	idx = binary.AppendUvarint(idx, uint64(usize))
	for len(idx)%4 != 0 {
		idx = append(idx, 0)
	}
	idx = le.AppendUint32(idx, crc32.ChecksumIEEE(idx))
	tail.Write(idx)
	foot := le.AppendUint32(nil, uint32(len(idx)/4-1))
	foot = append(foot, flags...)
	tail.Write(le.AppendUint32(nil, crc32.ChecksumIEEE(foot)))
	tail.Write(foot)
	tail.WriteString("YZ")
	return io.MultiReader(&head, bytes.NewReader(comp), &tail), nil
}
