#include "textflag.h"

// The column kernels of cholSolveVec (chol.go). lt is the factor stored by
// columns, row k of lt (w floats) holding column k of L: lt[k*w+i] = L_ik
// for i >= k, and the forward substitution's y_k at lt[k*w+d]. For column
// j they subtract, for k = 0, 1, ..., j-1 in that order,
//	lt[j*w+i] -= lt[k*w+i] * lt[k*w+j]
// for the lanes i in [off, off+4N) (cholColNNAVX2, N = 1…12 vectors, at
// the end of this file): every lane gets the product and the difference
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

// The column kernels, cholColN1AVX2 … cholColN12AVX2 (see the top of the
// file): N accumulators, N products in the registers left, Y15 the
// broadcast L_jk.

// func cholColN1AVX2(lt []float64, w, j, off int)
TEXT ·cholColN1AVX2(SB), NOSPLIT, $0-48
	MOVQ lt_base+0(FP), DI
	MOVQ w+24(FP), CX
	MOVQ j+32(FP), DX
	MOVQ off+40(FP), SI
	SHLQ $3, CX
	MOVQ DX, AX
	IMULQ CX, AX
	LEAQ (DI)(AX*1), R9
	LEAQ (R9)(SI*8), R9 // &lt[j*w+off]
	VMOVUPD (R9), Y0
	LEAQ (DI)(SI*8), R10 // &lt[k*w+off]
	LEAQ (DI)(DX*8), R11 // &lt[k*w+j]
	XORQ BX, BX

n1loop:
	CMPQ BX, DX
	JGE  n1done
	VBROADCASTSD (R11), Y15
	VMULPD (R10), Y15, Y1
	VSUBPD Y1, Y0, Y0
	ADDQ CX, R10
	ADDQ CX, R11
	INCQ BX
	JMP  n1loop

n1done:
	VMOVUPD Y0, (R9)
	VZEROUPPER
	RET

// func cholColN2AVX2(lt []float64, w, j, off int)
TEXT ·cholColN2AVX2(SB), NOSPLIT, $0-48
	MOVQ lt_base+0(FP), DI
	MOVQ w+24(FP), CX
	MOVQ j+32(FP), DX
	MOVQ off+40(FP), SI
	SHLQ $3, CX
	MOVQ DX, AX
	IMULQ CX, AX
	LEAQ (DI)(AX*1), R9
	LEAQ (R9)(SI*8), R9 // &lt[j*w+off]
	VMOVUPD (R9), Y0
	VMOVUPD 32(R9), Y1
	LEAQ (DI)(SI*8), R10 // &lt[k*w+off]
	LEAQ (DI)(DX*8), R11 // &lt[k*w+j]
	XORQ BX, BX

n2loop:
	CMPQ BX, DX
	JGE  n2done
	VBROADCASTSD (R11), Y15
	VMULPD (R10), Y15, Y2
	VSUBPD Y2, Y0, Y0
	VMULPD 32(R10), Y15, Y3
	VSUBPD Y3, Y1, Y1
	ADDQ CX, R10
	ADDQ CX, R11
	INCQ BX
	JMP  n2loop

n2done:
	VMOVUPD Y0, (R9)
	VMOVUPD Y1, 32(R9)
	VZEROUPPER
	RET

// func cholColN3AVX2(lt []float64, w, j, off int)
TEXT ·cholColN3AVX2(SB), NOSPLIT, $0-48
	MOVQ lt_base+0(FP), DI
	MOVQ w+24(FP), CX
	MOVQ j+32(FP), DX
	MOVQ off+40(FP), SI
	SHLQ $3, CX
	MOVQ DX, AX
	IMULQ CX, AX
	LEAQ (DI)(AX*1), R9
	LEAQ (R9)(SI*8), R9 // &lt[j*w+off]
	VMOVUPD (R9), Y0
	VMOVUPD 32(R9), Y1
	VMOVUPD 64(R9), Y2
	LEAQ (DI)(SI*8), R10 // &lt[k*w+off]
	LEAQ (DI)(DX*8), R11 // &lt[k*w+j]
	XORQ BX, BX

n3loop:
	CMPQ BX, DX
	JGE  n3done
	VBROADCASTSD (R11), Y15
	VMULPD (R10), Y15, Y3
	VSUBPD Y3, Y0, Y0
	VMULPD 32(R10), Y15, Y4
	VSUBPD Y4, Y1, Y1
	VMULPD 64(R10), Y15, Y5
	VSUBPD Y5, Y2, Y2
	ADDQ CX, R10
	ADDQ CX, R11
	INCQ BX
	JMP  n3loop

n3done:
	VMOVUPD Y0, (R9)
	VMOVUPD Y1, 32(R9)
	VMOVUPD Y2, 64(R9)
	VZEROUPPER
	RET

// func cholColN4AVX2(lt []float64, w, j, off int)
TEXT ·cholColN4AVX2(SB), NOSPLIT, $0-48
	MOVQ lt_base+0(FP), DI
	MOVQ w+24(FP), CX
	MOVQ j+32(FP), DX
	MOVQ off+40(FP), SI
	SHLQ $3, CX
	MOVQ DX, AX
	IMULQ CX, AX
	LEAQ (DI)(AX*1), R9
	LEAQ (R9)(SI*8), R9 // &lt[j*w+off]
	VMOVUPD (R9), Y0
	VMOVUPD 32(R9), Y1
	VMOVUPD 64(R9), Y2
	VMOVUPD 96(R9), Y3
	LEAQ (DI)(SI*8), R10 // &lt[k*w+off]
	LEAQ (DI)(DX*8), R11 // &lt[k*w+j]
	XORQ BX, BX

n4loop:
	CMPQ BX, DX
	JGE  n4done
	VBROADCASTSD (R11), Y15
	VMULPD (R10), Y15, Y4
	VSUBPD Y4, Y0, Y0
	VMULPD 32(R10), Y15, Y5
	VSUBPD Y5, Y1, Y1
	VMULPD 64(R10), Y15, Y6
	VSUBPD Y6, Y2, Y2
	VMULPD 96(R10), Y15, Y7
	VSUBPD Y7, Y3, Y3
	ADDQ CX, R10
	ADDQ CX, R11
	INCQ BX
	JMP  n4loop

n4done:
	VMOVUPD Y0, (R9)
	VMOVUPD Y1, 32(R9)
	VMOVUPD Y2, 64(R9)
	VMOVUPD Y3, 96(R9)
	VZEROUPPER
	RET

// func cholColN5AVX2(lt []float64, w, j, off int)
TEXT ·cholColN5AVX2(SB), NOSPLIT, $0-48
	MOVQ lt_base+0(FP), DI
	MOVQ w+24(FP), CX
	MOVQ j+32(FP), DX
	MOVQ off+40(FP), SI
	SHLQ $3, CX
	MOVQ DX, AX
	IMULQ CX, AX
	LEAQ (DI)(AX*1), R9
	LEAQ (R9)(SI*8), R9 // &lt[j*w+off]
	VMOVUPD (R9), Y0
	VMOVUPD 32(R9), Y1
	VMOVUPD 64(R9), Y2
	VMOVUPD 96(R9), Y3
	VMOVUPD 128(R9), Y4
	LEAQ (DI)(SI*8), R10 // &lt[k*w+off]
	LEAQ (DI)(DX*8), R11 // &lt[k*w+j]
	XORQ BX, BX

n5loop:
	CMPQ BX, DX
	JGE  n5done
	VBROADCASTSD (R11), Y15
	VMULPD (R10), Y15, Y5
	VSUBPD Y5, Y0, Y0
	VMULPD 32(R10), Y15, Y6
	VSUBPD Y6, Y1, Y1
	VMULPD 64(R10), Y15, Y7
	VSUBPD Y7, Y2, Y2
	VMULPD 96(R10), Y15, Y8
	VSUBPD Y8, Y3, Y3
	VMULPD 128(R10), Y15, Y9
	VSUBPD Y9, Y4, Y4
	ADDQ CX, R10
	ADDQ CX, R11
	INCQ BX
	JMP  n5loop

n5done:
	VMOVUPD Y0, (R9)
	VMOVUPD Y1, 32(R9)
	VMOVUPD Y2, 64(R9)
	VMOVUPD Y3, 96(R9)
	VMOVUPD Y4, 128(R9)
	VZEROUPPER
	RET

// func cholColN6AVX2(lt []float64, w, j, off int)
TEXT ·cholColN6AVX2(SB), NOSPLIT, $0-48
	MOVQ lt_base+0(FP), DI
	MOVQ w+24(FP), CX
	MOVQ j+32(FP), DX
	MOVQ off+40(FP), SI
	SHLQ $3, CX
	MOVQ DX, AX
	IMULQ CX, AX
	LEAQ (DI)(AX*1), R9
	LEAQ (R9)(SI*8), R9 // &lt[j*w+off]
	VMOVUPD (R9), Y0
	VMOVUPD 32(R9), Y1
	VMOVUPD 64(R9), Y2
	VMOVUPD 96(R9), Y3
	VMOVUPD 128(R9), Y4
	VMOVUPD 160(R9), Y5
	LEAQ (DI)(SI*8), R10 // &lt[k*w+off]
	LEAQ (DI)(DX*8), R11 // &lt[k*w+j]
	XORQ BX, BX

n6loop:
	CMPQ BX, DX
	JGE  n6done
	VBROADCASTSD (R11), Y15
	VMULPD (R10), Y15, Y6
	VSUBPD Y6, Y0, Y0
	VMULPD 32(R10), Y15, Y7
	VSUBPD Y7, Y1, Y1
	VMULPD 64(R10), Y15, Y8
	VSUBPD Y8, Y2, Y2
	VMULPD 96(R10), Y15, Y9
	VSUBPD Y9, Y3, Y3
	VMULPD 128(R10), Y15, Y10
	VSUBPD Y10, Y4, Y4
	VMULPD 160(R10), Y15, Y11
	VSUBPD Y11, Y5, Y5
	ADDQ CX, R10
	ADDQ CX, R11
	INCQ BX
	JMP  n6loop

n6done:
	VMOVUPD Y0, (R9)
	VMOVUPD Y1, 32(R9)
	VMOVUPD Y2, 64(R9)
	VMOVUPD Y3, 96(R9)
	VMOVUPD Y4, 128(R9)
	VMOVUPD Y5, 160(R9)
	VZEROUPPER
	RET

// func cholColN7AVX2(lt []float64, w, j, off int)
TEXT ·cholColN7AVX2(SB), NOSPLIT, $0-48
	MOVQ lt_base+0(FP), DI
	MOVQ w+24(FP), CX
	MOVQ j+32(FP), DX
	MOVQ off+40(FP), SI
	SHLQ $3, CX
	MOVQ DX, AX
	IMULQ CX, AX
	LEAQ (DI)(AX*1), R9
	LEAQ (R9)(SI*8), R9 // &lt[j*w+off]
	VMOVUPD (R9), Y0
	VMOVUPD 32(R9), Y1
	VMOVUPD 64(R9), Y2
	VMOVUPD 96(R9), Y3
	VMOVUPD 128(R9), Y4
	VMOVUPD 160(R9), Y5
	VMOVUPD 192(R9), Y6
	LEAQ (DI)(SI*8), R10 // &lt[k*w+off]
	LEAQ (DI)(DX*8), R11 // &lt[k*w+j]
	XORQ BX, BX

n7loop:
	CMPQ BX, DX
	JGE  n7done
	VBROADCASTSD (R11), Y15
	VMULPD (R10), Y15, Y7
	VSUBPD Y7, Y0, Y0
	VMULPD 32(R10), Y15, Y8
	VSUBPD Y8, Y1, Y1
	VMULPD 64(R10), Y15, Y9
	VSUBPD Y9, Y2, Y2
	VMULPD 96(R10), Y15, Y10
	VSUBPD Y10, Y3, Y3
	VMULPD 128(R10), Y15, Y11
	VSUBPD Y11, Y4, Y4
	VMULPD 160(R10), Y15, Y12
	VSUBPD Y12, Y5, Y5
	VMULPD 192(R10), Y15, Y13
	VSUBPD Y13, Y6, Y6
	ADDQ CX, R10
	ADDQ CX, R11
	INCQ BX
	JMP  n7loop

n7done:
	VMOVUPD Y0, (R9)
	VMOVUPD Y1, 32(R9)
	VMOVUPD Y2, 64(R9)
	VMOVUPD Y3, 96(R9)
	VMOVUPD Y4, 128(R9)
	VMOVUPD Y5, 160(R9)
	VMOVUPD Y6, 192(R9)
	VZEROUPPER
	RET

// func cholColN8AVX2(lt []float64, w, j, off int)
TEXT ·cholColN8AVX2(SB), NOSPLIT, $0-48
	MOVQ lt_base+0(FP), DI
	MOVQ w+24(FP), CX
	MOVQ j+32(FP), DX
	MOVQ off+40(FP), SI
	SHLQ $3, CX
	MOVQ DX, AX
	IMULQ CX, AX
	LEAQ (DI)(AX*1), R9
	LEAQ (R9)(SI*8), R9 // &lt[j*w+off]
	VMOVUPD (R9), Y0
	VMOVUPD 32(R9), Y1
	VMOVUPD 64(R9), Y2
	VMOVUPD 96(R9), Y3
	VMOVUPD 128(R9), Y4
	VMOVUPD 160(R9), Y5
	VMOVUPD 192(R9), Y6
	VMOVUPD 224(R9), Y7
	LEAQ (DI)(SI*8), R10 // &lt[k*w+off]
	LEAQ (DI)(DX*8), R11 // &lt[k*w+j]
	XORQ BX, BX

n8loop:
	CMPQ BX, DX
	JGE  n8done
	VBROADCASTSD (R11), Y15
	VMULPD (R10), Y15, Y8
	VSUBPD Y8, Y0, Y0
	VMULPD 32(R10), Y15, Y9
	VSUBPD Y9, Y1, Y1
	VMULPD 64(R10), Y15, Y10
	VSUBPD Y10, Y2, Y2
	VMULPD 96(R10), Y15, Y11
	VSUBPD Y11, Y3, Y3
	VMULPD 128(R10), Y15, Y12
	VSUBPD Y12, Y4, Y4
	VMULPD 160(R10), Y15, Y13
	VSUBPD Y13, Y5, Y5
	VMULPD 192(R10), Y15, Y14
	VSUBPD Y14, Y6, Y6
	VMULPD 224(R10), Y15, Y8
	VSUBPD Y8, Y7, Y7
	ADDQ CX, R10
	ADDQ CX, R11
	INCQ BX
	JMP  n8loop

n8done:
	VMOVUPD Y0, (R9)
	VMOVUPD Y1, 32(R9)
	VMOVUPD Y2, 64(R9)
	VMOVUPD Y3, 96(R9)
	VMOVUPD Y4, 128(R9)
	VMOVUPD Y5, 160(R9)
	VMOVUPD Y6, 192(R9)
	VMOVUPD Y7, 224(R9)
	VZEROUPPER
	RET

// func cholColN9AVX2(lt []float64, w, j, off int)
TEXT ·cholColN9AVX2(SB), NOSPLIT, $0-48
	MOVQ lt_base+0(FP), DI
	MOVQ w+24(FP), CX
	MOVQ j+32(FP), DX
	MOVQ off+40(FP), SI
	SHLQ $3, CX
	MOVQ DX, AX
	IMULQ CX, AX
	LEAQ (DI)(AX*1), R9
	LEAQ (R9)(SI*8), R9 // &lt[j*w+off]
	VMOVUPD (R9), Y0
	VMOVUPD 32(R9), Y1
	VMOVUPD 64(R9), Y2
	VMOVUPD 96(R9), Y3
	VMOVUPD 128(R9), Y4
	VMOVUPD 160(R9), Y5
	VMOVUPD 192(R9), Y6
	VMOVUPD 224(R9), Y7
	VMOVUPD 256(R9), Y8
	LEAQ (DI)(SI*8), R10 // &lt[k*w+off]
	LEAQ (DI)(DX*8), R11 // &lt[k*w+j]
	XORQ BX, BX

n9loop:
	CMPQ BX, DX
	JGE  n9done
	VBROADCASTSD (R11), Y15
	VMULPD (R10), Y15, Y9
	VSUBPD Y9, Y0, Y0
	VMULPD 32(R10), Y15, Y10
	VSUBPD Y10, Y1, Y1
	VMULPD 64(R10), Y15, Y11
	VSUBPD Y11, Y2, Y2
	VMULPD 96(R10), Y15, Y12
	VSUBPD Y12, Y3, Y3
	VMULPD 128(R10), Y15, Y13
	VSUBPD Y13, Y4, Y4
	VMULPD 160(R10), Y15, Y14
	VSUBPD Y14, Y5, Y5
	VMULPD 192(R10), Y15, Y9
	VSUBPD Y9, Y6, Y6
	VMULPD 224(R10), Y15, Y10
	VSUBPD Y10, Y7, Y7
	VMULPD 256(R10), Y15, Y11
	VSUBPD Y11, Y8, Y8
	ADDQ CX, R10
	ADDQ CX, R11
	INCQ BX
	JMP  n9loop

n9done:
	VMOVUPD Y0, (R9)
	VMOVUPD Y1, 32(R9)
	VMOVUPD Y2, 64(R9)
	VMOVUPD Y3, 96(R9)
	VMOVUPD Y4, 128(R9)
	VMOVUPD Y5, 160(R9)
	VMOVUPD Y6, 192(R9)
	VMOVUPD Y7, 224(R9)
	VMOVUPD Y8, 256(R9)
	VZEROUPPER
	RET

// func cholColN10AVX2(lt []float64, w, j, off int)
TEXT ·cholColN10AVX2(SB), NOSPLIT, $0-48
	MOVQ lt_base+0(FP), DI
	MOVQ w+24(FP), CX
	MOVQ j+32(FP), DX
	MOVQ off+40(FP), SI
	SHLQ $3, CX
	MOVQ DX, AX
	IMULQ CX, AX
	LEAQ (DI)(AX*1), R9
	LEAQ (R9)(SI*8), R9 // &lt[j*w+off]
	VMOVUPD (R9), Y0
	VMOVUPD 32(R9), Y1
	VMOVUPD 64(R9), Y2
	VMOVUPD 96(R9), Y3
	VMOVUPD 128(R9), Y4
	VMOVUPD 160(R9), Y5
	VMOVUPD 192(R9), Y6
	VMOVUPD 224(R9), Y7
	VMOVUPD 256(R9), Y8
	VMOVUPD 288(R9), Y9
	LEAQ (DI)(SI*8), R10 // &lt[k*w+off]
	LEAQ (DI)(DX*8), R11 // &lt[k*w+j]
	XORQ BX, BX

n10loop:
	CMPQ BX, DX
	JGE  n10done
	VBROADCASTSD (R11), Y15
	VMULPD (R10), Y15, Y10
	VSUBPD Y10, Y0, Y0
	VMULPD 32(R10), Y15, Y11
	VSUBPD Y11, Y1, Y1
	VMULPD 64(R10), Y15, Y12
	VSUBPD Y12, Y2, Y2
	VMULPD 96(R10), Y15, Y13
	VSUBPD Y13, Y3, Y3
	VMULPD 128(R10), Y15, Y14
	VSUBPD Y14, Y4, Y4
	VMULPD 160(R10), Y15, Y10
	VSUBPD Y10, Y5, Y5
	VMULPD 192(R10), Y15, Y11
	VSUBPD Y11, Y6, Y6
	VMULPD 224(R10), Y15, Y12
	VSUBPD Y12, Y7, Y7
	VMULPD 256(R10), Y15, Y13
	VSUBPD Y13, Y8, Y8
	VMULPD 288(R10), Y15, Y14
	VSUBPD Y14, Y9, Y9
	ADDQ CX, R10
	ADDQ CX, R11
	INCQ BX
	JMP  n10loop

n10done:
	VMOVUPD Y0, (R9)
	VMOVUPD Y1, 32(R9)
	VMOVUPD Y2, 64(R9)
	VMOVUPD Y3, 96(R9)
	VMOVUPD Y4, 128(R9)
	VMOVUPD Y5, 160(R9)
	VMOVUPD Y6, 192(R9)
	VMOVUPD Y7, 224(R9)
	VMOVUPD Y8, 256(R9)
	VMOVUPD Y9, 288(R9)
	VZEROUPPER
	RET

// func cholColN11AVX2(lt []float64, w, j, off int)
TEXT ·cholColN11AVX2(SB), NOSPLIT, $0-48
	MOVQ lt_base+0(FP), DI
	MOVQ w+24(FP), CX
	MOVQ j+32(FP), DX
	MOVQ off+40(FP), SI
	SHLQ $3, CX
	MOVQ DX, AX
	IMULQ CX, AX
	LEAQ (DI)(AX*1), R9
	LEAQ (R9)(SI*8), R9 // &lt[j*w+off]
	VMOVUPD (R9), Y0
	VMOVUPD 32(R9), Y1
	VMOVUPD 64(R9), Y2
	VMOVUPD 96(R9), Y3
	VMOVUPD 128(R9), Y4
	VMOVUPD 160(R9), Y5
	VMOVUPD 192(R9), Y6
	VMOVUPD 224(R9), Y7
	VMOVUPD 256(R9), Y8
	VMOVUPD 288(R9), Y9
	VMOVUPD 320(R9), Y10
	LEAQ (DI)(SI*8), R10 // &lt[k*w+off]
	LEAQ (DI)(DX*8), R11 // &lt[k*w+j]
	XORQ BX, BX

n11loop:
	CMPQ BX, DX
	JGE  n11done
	VBROADCASTSD (R11), Y15
	VMULPD (R10), Y15, Y11
	VSUBPD Y11, Y0, Y0
	VMULPD 32(R10), Y15, Y12
	VSUBPD Y12, Y1, Y1
	VMULPD 64(R10), Y15, Y13
	VSUBPD Y13, Y2, Y2
	VMULPD 96(R10), Y15, Y14
	VSUBPD Y14, Y3, Y3
	VMULPD 128(R10), Y15, Y11
	VSUBPD Y11, Y4, Y4
	VMULPD 160(R10), Y15, Y12
	VSUBPD Y12, Y5, Y5
	VMULPD 192(R10), Y15, Y13
	VSUBPD Y13, Y6, Y6
	VMULPD 224(R10), Y15, Y14
	VSUBPD Y14, Y7, Y7
	VMULPD 256(R10), Y15, Y11
	VSUBPD Y11, Y8, Y8
	VMULPD 288(R10), Y15, Y12
	VSUBPD Y12, Y9, Y9
	VMULPD 320(R10), Y15, Y13
	VSUBPD Y13, Y10, Y10
	ADDQ CX, R10
	ADDQ CX, R11
	INCQ BX
	JMP  n11loop

n11done:
	VMOVUPD Y0, (R9)
	VMOVUPD Y1, 32(R9)
	VMOVUPD Y2, 64(R9)
	VMOVUPD Y3, 96(R9)
	VMOVUPD Y4, 128(R9)
	VMOVUPD Y5, 160(R9)
	VMOVUPD Y6, 192(R9)
	VMOVUPD Y7, 224(R9)
	VMOVUPD Y8, 256(R9)
	VMOVUPD Y9, 288(R9)
	VMOVUPD Y10, 320(R9)
	VZEROUPPER
	RET

// func cholColN12AVX2(lt []float64, w, j, off int)
TEXT ·cholColN12AVX2(SB), NOSPLIT, $0-48
	MOVQ lt_base+0(FP), DI
	MOVQ w+24(FP), CX
	MOVQ j+32(FP), DX
	MOVQ off+40(FP), SI
	SHLQ $3, CX
	MOVQ DX, AX
	IMULQ CX, AX
	LEAQ (DI)(AX*1), R9
	LEAQ (R9)(SI*8), R9 // &lt[j*w+off]
	VMOVUPD (R9), Y0
	VMOVUPD 32(R9), Y1
	VMOVUPD 64(R9), Y2
	VMOVUPD 96(R9), Y3
	VMOVUPD 128(R9), Y4
	VMOVUPD 160(R9), Y5
	VMOVUPD 192(R9), Y6
	VMOVUPD 224(R9), Y7
	VMOVUPD 256(R9), Y8
	VMOVUPD 288(R9), Y9
	VMOVUPD 320(R9), Y10
	VMOVUPD 352(R9), Y11
	LEAQ (DI)(SI*8), R10 // &lt[k*w+off]
	LEAQ (DI)(DX*8), R11 // &lt[k*w+j]
	XORQ BX, BX

n12loop:
	CMPQ BX, DX
	JGE  n12done
	VBROADCASTSD (R11), Y15
	VMULPD (R10), Y15, Y12
	VSUBPD Y12, Y0, Y0
	VMULPD 32(R10), Y15, Y13
	VSUBPD Y13, Y1, Y1
	VMULPD 64(R10), Y15, Y14
	VSUBPD Y14, Y2, Y2
	VMULPD 96(R10), Y15, Y12
	VSUBPD Y12, Y3, Y3
	VMULPD 128(R10), Y15, Y13
	VSUBPD Y13, Y4, Y4
	VMULPD 160(R10), Y15, Y14
	VSUBPD Y14, Y5, Y5
	VMULPD 192(R10), Y15, Y12
	VSUBPD Y12, Y6, Y6
	VMULPD 224(R10), Y15, Y13
	VSUBPD Y13, Y7, Y7
	VMULPD 256(R10), Y15, Y14
	VSUBPD Y14, Y8, Y8
	VMULPD 288(R10), Y15, Y12
	VSUBPD Y12, Y9, Y9
	VMULPD 320(R10), Y15, Y13
	VSUBPD Y13, Y10, Y10
	VMULPD 352(R10), Y15, Y14
	VSUBPD Y14, Y11, Y11
	ADDQ CX, R10
	ADDQ CX, R11
	INCQ BX
	JMP  n12loop

n12done:
	VMOVUPD Y0, (R9)
	VMOVUPD Y1, 32(R9)
	VMOVUPD Y2, 64(R9)
	VMOVUPD Y3, 96(R9)
	VMOVUPD Y4, 128(R9)
	VMOVUPD Y5, 160(R9)
	VMOVUPD Y6, 192(R9)
	VMOVUPD Y7, 224(R9)
	VMOVUPD Y8, 256(R9)
	VMOVUPD Y9, 288(R9)
	VMOVUPD Y10, 320(R9)
	VMOVUPD Y11, 352(R9)
	VZEROUPPER
	RET

// The unobserved gradient's product of Sᵀ with an item's factor
// (fit.go): lanes [off, off+4N) of t = Σ_q r[q]·(row q of st, d wide),
// from zero and in q's order, each product and sum rounded on its own
// (no fusion), as axpy adds them one row after another. N = 8 or 1.
// func matVec8AVX2(t, st, r []float64, d, off int)
TEXT ·matVec8AVX2(SB), NOSPLIT, $0-88
	MOVQ t_base+0(FP), DI
	MOVQ st_base+24(FP), SI
	MOVQ r_base+48(FP), DX
	MOVQ d+72(FP), CX
	MOVQ off+80(FP), AX
	LEAQ (DI)(AX*8), DI // &t[off]
	LEAQ (SI)(AX*8), SI // &st[off], then &st[q*d+off]
	MOVQ CX, R8
	SHLQ $3, R8 // bytes of a row of st
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	XORQ BX, BX

mv8loop:
	CMPQ BX, CX
	JGE  mv8done
	VBROADCASTSD (DX)(BX*8), Y15
	VMULPD (SI), Y15, Y8
	VADDPD Y8, Y0, Y0
	VMULPD 32(SI), Y15, Y9
	VADDPD Y9, Y1, Y1
	VMULPD 64(SI), Y15, Y10
	VADDPD Y10, Y2, Y2
	VMULPD 96(SI), Y15, Y11
	VADDPD Y11, Y3, Y3
	VMULPD 128(SI), Y15, Y12
	VADDPD Y12, Y4, Y4
	VMULPD 160(SI), Y15, Y13
	VADDPD Y13, Y5, Y5
	VMULPD 192(SI), Y15, Y14
	VADDPD Y14, Y6, Y6
	VMULPD 224(SI), Y15, Y8
	VADDPD Y8, Y7, Y7
	ADDQ R8, SI
	INCQ BX
	JMP  mv8loop

mv8done:
	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	VMOVUPD Y4, 128(DI)
	VMOVUPD Y5, 160(DI)
	VMOVUPD Y6, 192(DI)
	VMOVUPD Y7, 224(DI)
	VZEROUPPER
	RET

// func matVec1AVX2(t, st, r []float64, d, off int)
TEXT ·matVec1AVX2(SB), NOSPLIT, $0-88
	MOVQ t_base+0(FP), DI
	MOVQ st_base+24(FP), SI
	MOVQ r_base+48(FP), DX
	MOVQ d+72(FP), CX
	MOVQ off+80(FP), AX
	LEAQ (DI)(AX*8), DI // &t[off]
	LEAQ (SI)(AX*8), SI // &st[off], then &st[q*d+off]
	MOVQ CX, R8
	SHLQ $3, R8 // bytes of a row of st
	VXORPD Y0, Y0, Y0
	XORQ BX, BX

mv1loop:
	CMPQ BX, CX
	JGE  mv1done
	VBROADCASTSD (DX)(BX*8), Y15
	VMULPD (SI), Y15, Y1
	VADDPD Y1, Y0, Y0
	ADDQ R8, SI
	INCQ BX
	JMP  mv1loop

mv1done:
	VMOVUPD Y0, (DI)
	VZEROUPPER
	RET
