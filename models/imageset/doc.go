// Package imageset turns a labelled image folder into model inputs the way
// the model was evaluated when it was trained: an ImageFolder layout
// (DIR/<class>/*.jpg) read with its class list (sorted folder names, or a
// labels file in the model's output order), each image decoded (JPEG, PNG,
// WebP, BMP; grayscale, CMYK, paletted and 16-bit converted to 8-bit RGB;
// EXIF orientation applied), its shorter side resized to size / crop_pct
// with the model's interpolation (bilinear or bicubic, antialiased as PIL
// resizes), centre-cropped, scaled to [0, 1] and normalized with the
// model's mean and standard deviation.
//
// Decoding runs in parallel and its result, 8-bit pixels after resize and
// crop, is cached on disk keyed by the folder's contents and the
// preprocessing, so a second run over the same set reads it back instead.
// A Set streams batches from that cache: however many images a folder
// holds, only one batch of them is in memory at a time. Files that do not
// decode are skipped and counted, never fatal.
package imageset
