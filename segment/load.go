package segment

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/segment/kmeans"
)

// LoadMatrix reads a matrix from a .npy file, or from a Parquet file with
// one FLOAT or DOUBLE column per dimension (other columns are ignored),
// columns in schema order.
func LoadMatrix(ctx context.Context, ref dataset.Ref) (*kmeans.Matrix, error) {
	obj, err := ref.Store.Open(ctx, ref.Key)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	if strings.HasSuffix(ref.Key, ".npy") {
		x, err := ReadNpy(io.NewSectionReader(obj, 0, obj.Size()), obj.Size())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		return x, nil
	}
	pm, err := OpenParquetMatrix(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer pm.Close()
	x := kmeans.NewMatrix(int(pm.f.NumRows()), pm.Dims())
	var piece *kmeans.Matrix
	row := 0
	for g := range pm.Pieces() {
		if piece, err = pm.Read(ctx, g, piece); err != nil {
			return nil, err
		}
		copy(x.Data[row*x.D:], piece.Data)
		row += piece.N
	}
	return x, nil
}
