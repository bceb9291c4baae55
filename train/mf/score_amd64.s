#include "textflag.h"

// func scorePanelsAVX2(tile []float32, flags []uint8, u, v, bias []float32, d int, thr *[6]float32)
// For each panel p < len(flags) of v (d × 16 floats, coordinate-major) it
// scores the 6 subjects of u (d × 6, coordinate-major) against the 16 items:
// acc[r][c] = bias[p*16+c] + sum_q u[q*6+r] * v[p*d*16 + q*16 + c], fused.
// flags[p] gets bit r when some acc[r][c] >= thr[r]; then the tile is stored
// at tile[p*96:], row r at +r*16. d >= 1.
TEXT ·scorePanelsAVX2(SB), NOSPLIT, $0-136
	MOVQ tile_base+0(FP), DI
	MOVQ flags_base+24(FP), BX
	MOVQ flags_len+32(FP), CX
	MOVQ u_base+48(FP), SI
	MOVQ v_base+72(FP), DX
	MOVQ bias_base+96(FP), R8
	MOVQ d+120(FP), R9
	MOVQ thr+128(FP), R10
	XORQ R11, R11

panel:
	CMPQ R11, CX
	JGE  done
	VMOVUPS (R8), Y12
	VMOVUPS 32(R8), Y13
	VMOVAPS Y12, Y0
	VMOVAPS Y13, Y1
	VMOVAPS Y12, Y2
	VMOVAPS Y13, Y3
	VMOVAPS Y12, Y4
	VMOVAPS Y13, Y5
	VMOVAPS Y12, Y6
	VMOVAPS Y13, Y7
	VMOVAPS Y12, Y8
	VMOVAPS Y13, Y9
	VMOVAPS Y12, Y10
	VMOVAPS Y13, Y11
	MOVQ SI, R12
	MOVQ R9, R13

coord:
	VMOVUPS (DX), Y12
	VMOVUPS 32(DX), Y13
	VBROADCASTSS 0(R12), Y14
	VFMADD231PS  Y12, Y14, Y0
	VFMADD231PS  Y13, Y14, Y1
	VBROADCASTSS 4(R12), Y15
	VFMADD231PS  Y12, Y15, Y2
	VFMADD231PS  Y13, Y15, Y3
	VBROADCASTSS 8(R12), Y14
	VFMADD231PS  Y12, Y14, Y4
	VFMADD231PS  Y13, Y14, Y5
	VBROADCASTSS 12(R12), Y15
	VFMADD231PS  Y12, Y15, Y6
	VFMADD231PS  Y13, Y15, Y7
	VBROADCASTSS 16(R12), Y14
	VFMADD231PS  Y12, Y14, Y8
	VFMADD231PS  Y13, Y14, Y9
	VBROADCASTSS 20(R12), Y15
	VFMADD231PS  Y12, Y15, Y10
	VFMADD231PS  Y13, Y15, Y11
	ADDQ $64, DX
	ADDQ $24, R12
	DECQ R13
	JNZ  coord

	// Flag the rows with a score at or above their threshold.
	XORL AX, AX
	VBROADCASTSS 0(R10), Y14
	VCMPPS       $0x1D, Y14, Y0, Y12
	VCMPPS       $0x1D, Y14, Y1, Y13
	VORPS        Y12, Y13, Y12
	VMOVMSKPS    Y12, R12
	TESTL        R12, R12
	JZ           row0
	ORL          $1, AX
row0:
	VBROADCASTSS 4(R10), Y14
	VCMPPS       $0x1D, Y14, Y2, Y12
	VCMPPS       $0x1D, Y14, Y3, Y13
	VORPS        Y12, Y13, Y12
	VMOVMSKPS    Y12, R12
	TESTL        R12, R12
	JZ           row1
	ORL          $2, AX
row1:
	VBROADCASTSS 8(R10), Y14
	VCMPPS       $0x1D, Y14, Y4, Y12
	VCMPPS       $0x1D, Y14, Y5, Y13
	VORPS        Y12, Y13, Y12
	VMOVMSKPS    Y12, R12
	TESTL        R12, R12
	JZ           row2
	ORL          $4, AX
row2:
	VBROADCASTSS 12(R10), Y14
	VCMPPS       $0x1D, Y14, Y6, Y12
	VCMPPS       $0x1D, Y14, Y7, Y13
	VORPS        Y12, Y13, Y12
	VMOVMSKPS    Y12, R12
	TESTL        R12, R12
	JZ           row3
	ORL          $8, AX
row3:
	VBROADCASTSS 16(R10), Y14
	VCMPPS       $0x1D, Y14, Y8, Y12
	VCMPPS       $0x1D, Y14, Y9, Y13
	VORPS        Y12, Y13, Y12
	VMOVMSKPS    Y12, R12
	TESTL        R12, R12
	JZ           row4
	ORL          $16, AX
row4:
	VBROADCASTSS 20(R10), Y14
	VCMPPS       $0x1D, Y14, Y10, Y12
	VCMPPS       $0x1D, Y14, Y11, Y13
	VORPS        Y12, Y13, Y12
	VMOVMSKPS    Y12, R12
	TESTL        R12, R12
	JZ           row5
	ORL          $32, AX
row5:
	MOVB AX, (BX)(R11*1)
	TESTL AX, AX
	JZ    next
	IMUL3Q $384, R11, R14
	ADDQ  DI, R14
	VMOVUPS Y0, 0(R14)
	VMOVUPS Y1, 32(R14)
	VMOVUPS Y2, 64(R14)
	VMOVUPS Y3, 96(R14)
	VMOVUPS Y4, 128(R14)
	VMOVUPS Y5, 160(R14)
	VMOVUPS Y6, 192(R14)
	VMOVUPS Y7, 224(R14)
	VMOVUPS Y8, 256(R14)
	VMOVUPS Y9, 288(R14)
	VMOVUPS Y10, 320(R14)
	VMOVUPS Y11, 352(R14)

next:
	ADDQ $64, R8
	INCQ R11
	JMP  panel

done:
	VZEROUPPER
	RET

// func scorePanelsAVX512(tile []float32, flags []uint8, u, v, bias []float32, d int, thr *[6]float32)
// scorePanelsAVX2 with AVX-512: a panel's 16 items are one register, and
// two panels go at once, so that twelve accumulators of 16 lanes hide the
// multiply-add's latency. Every score has the same fused multiply-adds in
// the same order as in scorePanelsAVX2, so the tiles and flags are its bits.
TEXT ·scorePanelsAVX512(SB), NOSPLIT, $0-136
	MOVQ tile_base+0(FP), DI
	MOVQ flags_base+24(FP), BX
	MOVQ flags_len+32(FP), CX
	MOVQ u_base+48(FP), SI
	MOVQ v_base+72(FP), DX
	MOVQ bias_base+96(FP), R8
	MOVQ d+120(FP), R9
	MOVQ thr+128(FP), R10
	MOVQ R9, R15
	SHLQ $6, R15 // bytes of a panel of v
	VBROADCASTSS 0(R10), Z24
	VBROADCASTSS 4(R10), Z25
	VBROADCASTSS 8(R10), Z26
	VBROADCASTSS 12(R10), Z27
	VBROADCASTSS 16(R10), Z28
	VBROADCASTSS 20(R10), Z29
	XORQ R11, R11 // panel p

pair:
	LEAQ 1(R11), AX
	CMPQ AX, CX
	JGE  single
	VMOVUPS (R8), Z12
	VMOVUPS 64(R8), Z13
	VMOVAPS Z12, Z0
	VMOVAPS Z13, Z1
	VMOVAPS Z12, Z2
	VMOVAPS Z13, Z3
	VMOVAPS Z12, Z4
	VMOVAPS Z13, Z5
	VMOVAPS Z12, Z6
	VMOVAPS Z13, Z7
	VMOVAPS Z12, Z8
	VMOVAPS Z13, Z9
	VMOVAPS Z12, Z10
	VMOVAPS Z13, Z11
	MOVQ SI, R12
	MOVQ R9, R13
	LEAQ (DX)(R15*1), R14 // panel p+1

pcoord:
	VMOVUPS (DX), Z12
	VMOVUPS (R14), Z13
	VBROADCASTSS 0(R12), Z14
	VFMADD231PS  Z12, Z14, Z0
	VFMADD231PS  Z13, Z14, Z1
	VBROADCASTSS 4(R12), Z15
	VFMADD231PS  Z12, Z15, Z2
	VFMADD231PS  Z13, Z15, Z3
	VBROADCASTSS 8(R12), Z14
	VFMADD231PS  Z12, Z14, Z4
	VFMADD231PS  Z13, Z14, Z5
	VBROADCASTSS 12(R12), Z15
	VFMADD231PS  Z12, Z15, Z6
	VFMADD231PS  Z13, Z15, Z7
	VBROADCASTSS 16(R12), Z14
	VFMADD231PS  Z12, Z14, Z8
	VFMADD231PS  Z13, Z14, Z9
	VBROADCASTSS 20(R12), Z15
	VFMADD231PS  Z12, Z15, Z10
	VFMADD231PS  Z13, Z15, Z11
	ADDQ $64, DX
	ADDQ $64, R14
	ADDQ $24, R12
	DECQ R13
	JNZ  pcoord

	XORL AX, AX
	VCMPPS   $0x1D, Z24, Z0, K1
	KORTESTW K1, K1
	JZ       pa0
	ORL      $1, AX
pa0:
	VCMPPS   $0x1D, Z25, Z2, K1
	KORTESTW K1, K1
	JZ       pa1
	ORL      $2, AX
pa1:
	VCMPPS   $0x1D, Z26, Z4, K1
	KORTESTW K1, K1
	JZ       pa2
	ORL      $4, AX
pa2:
	VCMPPS   $0x1D, Z27, Z6, K1
	KORTESTW K1, K1
	JZ       pa3
	ORL      $8, AX
pa3:
	VCMPPS   $0x1D, Z28, Z8, K1
	KORTESTW K1, K1
	JZ       pa4
	ORL      $16, AX
pa4:
	VCMPPS   $0x1D, Z29, Z10, K1
	KORTESTW K1, K1
	JZ       pa5
	ORL      $32, AX
pa5:
	MOVB  AX, (BX)(R11*1)
	TESTL AX, AX
	JZ    pb
	IMUL3Q $384, R11, R12
	ADDQ  DI, R12
	VMOVUPS Z0, 0(R12)
	VMOVUPS Z2, 64(R12)
	VMOVUPS Z4, 128(R12)
	VMOVUPS Z6, 192(R12)
	VMOVUPS Z8, 256(R12)
	VMOVUPS Z10, 320(R12)

pb:
	XORL AX, AX
	VCMPPS   $0x1D, Z24, Z1, K1
	KORTESTW K1, K1
	JZ       pb0
	ORL      $1, AX
pb0:
	VCMPPS   $0x1D, Z25, Z3, K1
	KORTESTW K1, K1
	JZ       pb1
	ORL      $2, AX
pb1:
	VCMPPS   $0x1D, Z26, Z5, K1
	KORTESTW K1, K1
	JZ       pb2
	ORL      $4, AX
pb2:
	VCMPPS   $0x1D, Z27, Z7, K1
	KORTESTW K1, K1
	JZ       pb3
	ORL      $8, AX
pb3:
	VCMPPS   $0x1D, Z28, Z9, K1
	KORTESTW K1, K1
	JZ       pb4
	ORL      $16, AX
pb4:
	VCMPPS   $0x1D, Z29, Z11, K1
	KORTESTW K1, K1
	JZ       pb5
	ORL      $32, AX
pb5:
	MOVB  AX, 1(BX)(R11*1)
	TESTL AX, AX
	JZ    pnext
	IMUL3Q $384, R11, R12
	ADDQ  DI, R12
	ADDQ  $384, R12
	VMOVUPS Z1, 0(R12)
	VMOVUPS Z3, 64(R12)
	VMOVUPS Z5, 128(R12)
	VMOVUPS Z7, 192(R12)
	VMOVUPS Z9, 256(R12)
	VMOVUPS Z11, 320(R12)

pnext:
	ADDQ R15, DX // past panel p+1 (the loop left DX at its start)
	ADDQ $128, R8
	ADDQ $2, R11
	JMP  pair

single:
	CMPQ R11, CX
	JGE  sdone
	VMOVUPS (R8), Z12
	VMOVAPS Z12, Z0
	VMOVAPS Z12, Z2
	VMOVAPS Z12, Z4
	VMOVAPS Z12, Z6
	VMOVAPS Z12, Z8
	VMOVAPS Z12, Z10
	MOVQ SI, R12
	MOVQ R9, R13

scoord:
	VMOVUPS (DX), Z12
	VBROADCASTSS 0(R12), Z14
	VFMADD231PS  Z12, Z14, Z0
	VBROADCASTSS 4(R12), Z15
	VFMADD231PS  Z12, Z15, Z2
	VBROADCASTSS 8(R12), Z14
	VFMADD231PS  Z12, Z14, Z4
	VBROADCASTSS 12(R12), Z15
	VFMADD231PS  Z12, Z15, Z6
	VBROADCASTSS 16(R12), Z14
	VFMADD231PS  Z12, Z14, Z8
	VBROADCASTSS 20(R12), Z15
	VFMADD231PS  Z12, Z15, Z10
	ADDQ $64, DX
	ADDQ $24, R12
	DECQ R13
	JNZ  scoord

	XORL AX, AX
	VCMPPS   $0x1D, Z24, Z0, K1
	KORTESTW K1, K1
	JZ       sa0
	ORL      $1, AX
sa0:
	VCMPPS   $0x1D, Z25, Z2, K1
	KORTESTW K1, K1
	JZ       sa1
	ORL      $2, AX
sa1:
	VCMPPS   $0x1D, Z26, Z4, K1
	KORTESTW K1, K1
	JZ       sa2
	ORL      $4, AX
sa2:
	VCMPPS   $0x1D, Z27, Z6, K1
	KORTESTW K1, K1
	JZ       sa3
	ORL      $8, AX
sa3:
	VCMPPS   $0x1D, Z28, Z8, K1
	KORTESTW K1, K1
	JZ       sa4
	ORL      $16, AX
sa4:
	VCMPPS   $0x1D, Z29, Z10, K1
	KORTESTW K1, K1
	JZ       sa5
	ORL      $32, AX
sa5:
	MOVB  AX, (BX)(R11*1)
	TESTL AX, AX
	JZ    sdone
	IMUL3Q $384, R11, R12
	ADDQ  DI, R12
	VMOVUPS Z0, 0(R12)
	VMOVUPS Z2, 64(R12)
	VMOVUPS Z4, 128(R12)
	VMOVUPS Z6, 192(R12)
	VMOVUPS Z8, 256(R12)
	VMOVUPS Z10, 320(R12)

sdone:
	VZEROUPPER
	RET

// func gramAdd4AVX2(a []float64, d int, r0, r1, r2, r3 []float64, e *[4]float64)
// For each row p < d of the d×d matrix a, with f_k = e[k]*r_k[p] rounded:
// a[p*d+q] = fma(f3, r3[q], fma(f2, r2[q], fma(f1, r1[q], fma(f0, r0[q], a[p*d+q]))))
// for q below p+1 rounded up to a multiple of 4, each fused multiply-add
// rounded once, as gramAdd4Generic's math.FMA. d % 4 == 0. Rows go in
// pairs (p, p+1) with p even, which have the same rounded length: every
// load of r_k[q] serves both rows, and the sixteen multiply-adds of a
// step of eight columns outweigh its twelve loads.
TEXT ·gramAdd4AVX2(SB), NOSPLIT, $0-136
	MOVQ a_base+0(FP), DI
	MOVQ d+24(FP), CX
	MOVQ r0_base+32(FP), R8
	MOVQ r1_base+56(FP), R9
	MOVQ r2_base+80(FP), R10
	MOVQ r3_base+104(FP), R11
	MOVQ e+128(FP), SI
	MOVQ DI, R13 // row p of a
	LEAQ (DI)(CX*8), R15 // row p+1 of a
	XORQ R12, R12 // p

grow:
	CMPQ R12, CX
	JGE  gdone
	VMOVSD (R8)(R12*8), X0
	VMULSD (SI), X0, X0
	VBROADCASTSD X0, Y0
	VMOVSD (R9)(R12*8), X1
	VMULSD 8(SI), X1, X1
	VBROADCASTSD X1, Y1
	VMOVSD (R10)(R12*8), X2
	VMULSD 16(SI), X2, X2
	VBROADCASTSD X2, Y2
	VMOVSD (R11)(R12*8), X3
	VMULSD 24(SI), X3, X3
	VBROADCASTSD X3, Y3
	VMOVSD 8(R8)(R12*8), X8
	VMULSD (SI), X8, X8
	VBROADCASTSD X8, Y8
	VMOVSD 8(R9)(R12*8), X9
	VMULSD 8(SI), X9, X9
	VBROADCASTSD X9, Y9
	VMOVSD 8(R10)(R12*8), X10
	VMULSD 16(SI), X10, X10
	VBROADCASTSD X10, Y10
	VMOVSD 8(R11)(R12*8), X11
	VMULSD 24(SI), X11, X11
	VBROADCASTSD X11, Y11
	LEAQ 4(R12), R14
	ANDQ $-4, R14 // p+1 rounded up to 4, also p+2's
	XORQ AX, AX // q

gpair:
	LEAQ 8(AX), DX
	CMPQ DX, R14
	JGT  gsingle
	VMOVUPD (R13)(AX*8), Y4
	VMOVUPD 32(R13)(AX*8), Y5
	VMOVUPD (R15)(AX*8), Y6
	VMOVUPD 32(R15)(AX*8), Y7
	VMOVUPD (R8)(AX*8), Y12
	VMOVUPD 32(R8)(AX*8), Y13
	VFMADD231PD Y12, Y0, Y4
	VFMADD231PD Y13, Y0, Y5
	VFMADD231PD Y12, Y8, Y6
	VFMADD231PD Y13, Y8, Y7
	VMOVUPD (R9)(AX*8), Y12
	VMOVUPD 32(R9)(AX*8), Y13
	VFMADD231PD Y12, Y1, Y4
	VFMADD231PD Y13, Y1, Y5
	VFMADD231PD Y12, Y9, Y6
	VFMADD231PD Y13, Y9, Y7
	VMOVUPD (R10)(AX*8), Y12
	VMOVUPD 32(R10)(AX*8), Y13
	VFMADD231PD Y12, Y2, Y4
	VFMADD231PD Y13, Y2, Y5
	VFMADD231PD Y12, Y10, Y6
	VFMADD231PD Y13, Y10, Y7
	VMOVUPD (R11)(AX*8), Y12
	VMOVUPD 32(R11)(AX*8), Y13
	VFMADD231PD Y12, Y3, Y4
	VFMADD231PD Y13, Y3, Y5
	VFMADD231PD Y12, Y11, Y6
	VFMADD231PD Y13, Y11, Y7
	VMOVUPD Y4, (R13)(AX*8)
	VMOVUPD Y5, 32(R13)(AX*8)
	VMOVUPD Y6, (R15)(AX*8)
	VMOVUPD Y7, 32(R15)(AX*8)
	MOVQ DX, AX
	JMP  gpair

gsingle:
	CMPQ AX, R14
	JGE  gnext
	VMOVUPD (R13)(AX*8), Y4
	VMOVUPD (R15)(AX*8), Y6
	VMOVUPD (R8)(AX*8), Y12
	VFMADD231PD Y12, Y0, Y4
	VFMADD231PD Y12, Y8, Y6
	VMOVUPD (R9)(AX*8), Y12
	VFMADD231PD Y12, Y1, Y4
	VFMADD231PD Y12, Y9, Y6
	VMOVUPD (R10)(AX*8), Y12
	VFMADD231PD Y12, Y2, Y4
	VFMADD231PD Y12, Y10, Y6
	VMOVUPD (R11)(AX*8), Y12
	VFMADD231PD Y12, Y3, Y4
	VFMADD231PD Y12, Y11, Y6
	VMOVUPD Y4, (R13)(AX*8)
	VMOVUPD Y6, (R15)(AX*8)

gnext:
	LEAQ (R15)(CX*8), R13
	LEAQ (R13)(CX*8), R15
	ADDQ $2, R12
	JMP  grow

gdone:
	VZEROUPPER
	RET

// func dot4x4AVX2(s *[16]float64, v0, v1, v2, v3, xt *float64, d int)
// s[4i+c] = sum over q < d of v_i[q] * xt[4q+c], from 0 and in q's order,
// each product and sum rounded on its own (no fusion), as dot rounds them.
// d >= 1.
TEXT ·dot4x4AVX2(SB), NOSPLIT, $0-56
	MOVQ s+0(FP), DI
	MOVQ v0+8(FP), R8
	MOVQ v1+16(FP), R9
	MOVQ v2+24(FP), R10
	MOVQ v3+32(FP), R11
	MOVQ xt+40(FP), SI
	MOVQ d+48(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	XORQ AX, AX

dloop:
	VMOVUPD      (SI), Y4
	VBROADCASTSD (R8)(AX*8), Y5
	VBROADCASTSD (R9)(AX*8), Y6
	VBROADCASTSD (R10)(AX*8), Y7
	VBROADCASTSD (R11)(AX*8), Y8
	VMULPD       Y4, Y5, Y5
	VMULPD       Y4, Y6, Y6
	VMULPD       Y4, Y7, Y7
	VMULPD       Y4, Y8, Y8
	VADDPD       Y5, Y0, Y0
	VADDPD       Y6, Y1, Y1
	VADDPD       Y7, Y2, Y2
	VADDPD       Y8, Y3, Y3
	ADDQ         $32, SI
	INCQ         AX
	CMPQ         AX, CX
	JLT          dloop

	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	VZEROUPPER
	RET

// func cholSolve8AVX2(l, xt *float64, d int)
// Solves L Lᵀ x = b in place for the eight columns of xt (d × 8, row major;
// L lower triangular d × d, row major), each column with
// cholSolveFactored's operations in its order, each product, difference
// and quotient rounded on its own (no fusion). d >= 1.
TEXT ·cholSolve8AVX2(SB), NOSPLIT, $0-24
	MOVQ l+0(FP), DI
	MOVQ xt+8(FP), SI
	MOVQ d+16(FP), CX
	MOVQ CX, BX
	SHLQ $3, BX // bytes in a row of l

	// Forward: x[i] = (b[i] - l[i,0]x[0] - … - l[i,i-1]x[i-1]) / l[i,i].
	XORQ R8, R8  // i
	MOVQ DI, R9  // &l[i*d]
	MOVQ SI, R10 // &xt[i*8]

fwd:
	CMPQ    R8, CX
	JGE     fdone
	VMOVUPD (R10), Y0
	VMOVUPD 32(R10), Y1
	XORQ    AX, AX // k
	MOVQ    SI, R11 // &xt[k*8]

fk:
	CMPQ         AX, R8
	JGE          fkdone
	VBROADCASTSD (R9)(AX*8), Y2
	VMULPD       (R11), Y2, Y3
	VMULPD       32(R11), Y2, Y4
	VSUBPD       Y3, Y0, Y0
	VSUBPD       Y4, Y1, Y1
	ADDQ         $64, R11
	INCQ         AX
	JMP          fk

fkdone:
	VBROADCASTSD (R9)(R8*8), Y2
	VDIVPD       Y2, Y0, Y0
	VDIVPD       Y2, Y1, Y1
	VMOVUPD      Y0, (R10)
	VMOVUPD      Y1, 32(R10)
	ADDQ         BX, R9
	ADDQ         $64, R10
	INCQ         R8
	JMP          fwd

fdone:
	// Backward: x[i] = (x[i] - l[i+1,i]x[i+1] - … - l[d-1,i]x[d-1]) / l[i,i].
	MOVQ CX, R8
	DECQ R8 // i

bwd:
	CMPQ    R8, $0
	JL      bdone
	MOVQ    R8, R10
	SHLQ    $6, R10
	ADDQ    SI, R10 // &xt[i*8]
	VMOVUPD (R10), Y0
	VMOVUPD 32(R10), Y1
	LEAQ    1(R8), AX // k
	LEAQ    64(R10), R11 // &xt[k*8]
	MOVQ    AX, R12
	IMULQ   BX, R12
	ADDQ    DI, R12
	LEAQ    (R12)(R8*8), R12 // &l[k*d+i]

bk:
	CMPQ         AX, CX
	JGE          bkdone
	VBROADCASTSD (R12), Y2
	VMULPD       (R11), Y2, Y3
	VMULPD       32(R11), Y2, Y4
	VSUBPD       Y3, Y0, Y0
	VSUBPD       Y4, Y1, Y1
	ADDQ         $64, R11
	ADDQ         BX, R12
	INCQ         AX
	JMP          bk

bkdone:
	MOVQ         R8, R13
	IMULQ        BX, R13
	ADDQ         DI, R13
	VBROADCASTSD (R13)(R8*8), Y2
	VDIVPD       Y2, Y0, Y0
	VDIVPD       Y2, Y1, Y1
	VMOVUPD      Y0, (R10)
	VMOVUPD      Y1, 32(R10)
	DECQ         R8
	JMP          bwd

bdone:
	VZEROUPPER
	RET
