package imageset

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

// tiffWithOrientation is a minimal little- or big-endian TIFF header with
// IFD0 holding one Orientation entry.
func tiffWithOrientation(o uint16, big bool) []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	b := []byte("II")
	if big {
		bo, b = binary.BigEndian, []byte("MM")
	}
	b = bo.AppendUint16(b, 42)
	b = bo.AppendUint32(b, 8)
	b = bo.AppendUint16(b, 2) // two entries: an unrelated one first
	for _, e := range [][3]uint32{{0x010f, 2, 0}, {0x0112, 3, uint32(o)}} {
		b = bo.AppendUint16(b, uint16(e[0]))
		b = bo.AppendUint16(b, uint16(e[1]))
		b = bo.AppendUint32(b, 1)
		if e[1] == 3 {
			b = bo.AppendUint16(b, uint16(e[2]))
			b = bo.AppendUint16(b, 0)
		} else {
			b = bo.AppendUint32(b, 0)
		}
	}
	return bo.AppendUint32(b, 0) // no next IFD
}

// withJPEGExif inserts an APP1 Exif segment after the JPEG's SOI.
func withJPEGExif(jpg []byte, o uint16, big bool) []byte {
	payload := append([]byte("Exif\x00\x00"), tiffWithOrientation(o, big)...)
	seg := []byte{0xff, 0xe1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(payload)+2))
	seg = append(seg, payload...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// withPNGExif inserts an eXIf chunk after the PNG's IHDR.
func withPNGExif(p []byte, o uint16) []byte {
	data := tiffWithOrientation(o, false)
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	chunk = append(chunk, "eXIf"...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	ihdrEnd := 8 + 4 + 4 + 13 + 4
	out := append([]byte{}, p[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, p[ihdrEnd:]...)
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image, q int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// numbered is a w×h NRGBA image whose pixel (x, y) has R = x, G = y.
func numbered(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 7, 255})
		}
	}
	return m
}
