#include "textflag.h"

// The column kernels of cholSolveVec (chol.go). lt is the factor stored by
// columns, row k of lt (w floats) holding column k of L: lt[k*w+i] = L_ik
// for i >= k, and the forward substitution's y_k at lt[k*w+d]. For column
// j they subtract, for k = 0, 1, ..., j-1 in that order,
//	lt[j*w+i] -= lt[k*w+i] * lt[k*w+j]
// for the lanes i in [off, off+4N) (cholColNNAVX2, N = 1…12 vectors, in
// chol_kernels_amd64.s, which gen_kernels.go writes): every lane gets the product and the difference
// rounded on their own (no fusion), in the order of the scalar code, so
// that each lane has the bits of cholFactor's entry and
// cholSolveFactored's forward step. All of a column's vectors go in one
// pass over k, so that their chains of subtractions run side by side.

// func cholScaleAVX2(x []float64, s float64)
// x[i] /= s for i < len(x) rounded up to a multiple of 4 (the caller's
// padding holds the rest), each quotient correctly rounded as the scalar
// division's.
TEXT ·cholScaleAVX2(SB), NOSPLIT, $0-32
	MOVQ x_base+0(FP), DI
	MOVQ x_len+8(FP), CX
	VBROADCASTSD s+24(FP), Y1
	XORQ AX, AX

sloop:
	CMPQ AX, CX
	JGE  sdone
	VMOVUPD (DI)(AX*8), Y0
	VDIVPD Y1, Y0, Y0
	VMOVUPD Y0, (DI)(AX*8)
	ADDQ $4, AX
	JMP  sloop

sdone:
	VZEROUPPER
	RET

// func rhsAddAVX2(rhs, r []float64, on, off float64)
// rhs[p] += on*r[p] + off*r[p] for p < len(rhs), a multiple of 4: the two
// products, their sum and the addition each rounded on their own, as the
// scalar Go code rounds them.
TEXT ·rhsAddAVX2(SB), NOSPLIT, $0-64
	MOVQ rhs_base+0(FP), DI
	MOVQ rhs_len+8(FP), CX
	MOVQ r_base+24(FP), SI
	VBROADCASTSD on+48(FP), Y2
	VBROADCASTSD off+56(FP), Y3
	XORQ AX, AX

rloop:
	CMPQ AX, CX
	JGE  rdone
	VMOVUPD (SI)(AX*8), Y0
	VMULPD Y0, Y2, Y4
	VMULPD Y0, Y3, Y5
	VADDPD Y5, Y4, Y4
	VADDPD (DI)(AX*8), Y4, Y4
	VMOVUPD Y4, (DI)(AX*8)
	ADDQ $4, AX
	JMP  rloop

rdone:
	VZEROUPPER
	RET

// func axpyAVX2(y, x []float64, a float64)
// y[i] += a*x[i] for i < len(y), a multiple of 4: the product and the sum
// rounded on their own, as the scalar Go code rounds them.
TEXT ·axpyAVX2(SB), NOSPLIT, $0-56
	MOVQ y_base+0(FP), DI
	MOVQ y_len+8(FP), CX
	MOVQ x_base+24(FP), SI
	VBROADCASTSD a+48(FP), Y2
	XORQ AX, AX

aloop:
	CMPQ AX, CX
	JGE  adone
	VMULPD (SI)(AX*8), Y2, Y0
	VADDPD (DI)(AX*8), Y0, Y0
	VMOVUPD Y0, (DI)(AX*8)
	ADDQ $4, AX
	JMP  aloop

adone:
	VZEROUPPER
	RET

// func dotAVX2(x, y []float64) float64
// The sum of x[i]*y[i] for i < len(x), a multiple of 4, in four lanes
// (lane l sums i ≡ l mod 4 in order) added as (l0+l1)+(l2+l3): not the
// scalar order, so not its bits.
TEXT ·dotAVX2(SB), NOSPLIT, $0-56
	MOVQ x_base+0(FP), DI
	MOVQ x_len+8(FP), CX
	MOVQ y_base+24(FP), SI
	VXORPD Y0, Y0, Y0
	XORQ AX, AX

dloop:
	CMPQ AX, CX
	JGE  ddone
	VMOVUPD (DI)(AX*8), Y1
	VMULPD (SI)(AX*8), Y1, Y1
	VADDPD Y1, Y0, Y0
	ADDQ $4, AX
	JMP  dloop

ddone:
	VEXTRACTF128 $1, Y0, X1
	VHADDPD X0, X0, X0
	VHADDPD X1, X1, X1
	VADDSD X1, X0, X0
	VMOVSD X0, ret+48(FP)
	VZEROUPPER
	RET
