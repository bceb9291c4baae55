package train

import (
	"bytes"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/veil-privacy/veil/train/mf"
)

// FactorsArrowFile is the Arrow IPC copy of the item factors, written when
// a job asks for it (factors_arrow).
const FactorsArrowFile = "item_factors.arrow"

// FactorsArrow encodes m's item factors as an Arrow IPC file (one
// record batch; vector is a fixed-size list of Dim float32).
func FactorsArrow(m *mf.Model) ([]byte, error) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "item_id", Type: arrow.BinaryTypes.String},
		{Name: "bias", Type: arrow.PrimitiveTypes.Float64},
		{Name: "vector", Type: arrow.FixedSizeListOf(int32(m.Dim), arrow.PrimitiveTypes.Float32)},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	ids := b.Field(0).(*array.StringBuilder)
	bias := b.Field(1).(*array.Float64Builder)
	vec := b.Field(2).(*array.FixedSizeListBuilder)
	vals := vec.ValueBuilder().(*array.Float32Builder)
	for _, f := range Factors(m) {
		ids.Append(f.ItemID)
		bias.Append(f.Bias)
		vec.Append(true)
		vals.AppendValues(f.Vector, nil)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schema))
	if err != nil {
		return nil, err
	}
	if err := w.Write(rec); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
