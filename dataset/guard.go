package dataset

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// maxPageBytes bounds the compressed and uncompressed size of one page.
// Page headers come from outside: the decoder allocates what they claim, so
// a 100-byte file could otherwise ask for gigabytes. Real writers use pages
// of about 1 MiB (Spark, Arrow, parquet-go); 256 MiB leaves wide room.
const maxPageBytes = 256 << 20

// checkChunk reads the page headers of one column chunk and refuses, before
// the decoder sees them, the values that would make it allocate without
// bound: page sizes past maxPageBytes or past the chunk, and the LZ4 codecs,
// whose decoder in parquet-go grows its buffer without limit on corrupt
// data. It costs one small read per page.
func checkChunk(src io.ReaderAt, size int64, meta *format.ColumnMetaData) error {
	switch meta.Codec {
	case format.Uncompressed, format.Snappy, format.Gzip, format.Zstd, format.Brotli:
	default:
		return fmt.Errorf("%w: compression codec %s is not supported (use SNAPPY, ZSTD, GZIP or none)", ErrCorrupt, meta.Codec)
	}
	start := meta.DataPageOffset
	if meta.DictionaryPageOffset > 0 && meta.DictionaryPageOffset < start {
		start = meta.DictionaryPageOffset
	}
	end := start + meta.TotalCompressedSize
	if start < 4 || meta.TotalCompressedSize < 0 || end > size || end < start {
		return fmt.Errorf("%w: column chunk at bytes %d..%d lies outside the file of %d bytes", ErrCorrupt, start, end, size)
	}
	var proto thrift.CompactProtocol
	buf := make([]byte, 512)
	for pos := start; pos < end; {
		n, err := src.ReadAt(buf[:min(int64(len(buf)), end-pos)], pos)
		if err != nil && err != io.EOF {
			return err
		}
		r := proto.NewReaderFromBytes(buf[:n])
		var h format.PageHeader
		if err := thrift.NewDecoder(r).Decode(&h); err != nil {
			if n == len(buf) && len(buf) < 1<<20 {
				buf = make([]byte, 4*len(buf)) // large statistics: read more
				continue
			}
			return fmt.Errorf("%w: page header at byte %d: %v", ErrCorrupt, pos, err)
		}
		headerLen := int64(r.(interface{ BytesRead() int }).BytesRead())
		switch {
		case h.CompressedPageSize < 0 || h.UncompressedPageSize < 0:
			return fmt.Errorf("%w: page at byte %d has a negative size", ErrCorrupt, pos)
		case h.CompressedPageSize > maxPageBytes || h.UncompressedPageSize > maxPageBytes:
			return fmt.Errorf("%w: page at byte %d claims %d bytes (%d compressed); the limit is %d", ErrCorrupt, pos, h.UncompressedPageSize, h.CompressedPageSize, maxPageBytes)
		case pos+headerLen+int64(h.CompressedPageSize) > end:
			return fmt.Errorf("%w: page at byte %d runs past the end of its column chunk", ErrCorrupt, pos)
		}
		pos += headerLen + int64(h.CompressedPageSize)
	}
	return nil
}
