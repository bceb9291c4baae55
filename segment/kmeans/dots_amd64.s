#include "textflag.h"

// func dotsAVX2(out, x, ct []float32, kp int)
// out[c] = sum_j x[j] * ct[j*kp + c] for c in [0, kp); kp is a multiple of 32.
TEXT ·dotsAVX2(SB), NOSPLIT, $0-80
	MOVQ out_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ ct_base+48(FP), DX
	MOVQ kp+72(FP), R8
	MOVQ R8, R9
	SHLQ $2, R9
	XORQ R10, R10

block:
	CMPQ R10, R8
	JGE  done
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	LEAQ (DX)(R10*4), R11
	XORQ R12, R12

loop:
	CMPQ R12, CX
	JGE  store
	VBROADCASTSS (SI)(R12*4), Y4
	VFMADD231PS  (R11), Y4, Y0
	VFMADD231PS  32(R11), Y4, Y1
	VFMADD231PS  64(R11), Y4, Y2
	VFMADD231PS  96(R11), Y4, Y3
	ADDQ R9, R11
	INCQ R12
	JMP  loop

store:
	VMOVUPS Y0, (DI)(R10*4)
	VMOVUPS Y1, 32(DI)(R10*4)
	VMOVUPS Y2, 64(DI)(R10*4)
	VMOVUPS Y3, 96(DI)(R10*4)
	ADDQ    $32, R10
	JMP     block

done:
	VZEROUPPER
	RET

// func dots2AVX2(out1, out2, x1, x2, ct []float32, kp int)
// out1[c] = x1 · centre c and out2[c] = x2 · centre c, for c in [0, kp);
// kp is a multiple of 32; x1 and x2 have the same length.
TEXT ·dots2AVX2(SB), NOSPLIT, $0-128
	MOVQ out1_base+0(FP), DI
	MOVQ out2_base+24(FP), BX
	MOVQ x1_base+48(FP), SI
	MOVQ x1_len+56(FP), CX
	MOVQ x2_base+72(FP), R13
	MOVQ ct_base+96(FP), DX
	MOVQ kp+120(FP), R8
	MOVQ R8, R9
	SHLQ $2, R9
	XORQ R10, R10

block2:
	CMPQ R10, R8
	JGE  done2
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	LEAQ (DX)(R10*4), R11
	XORQ R12, R12

loop2:
	CMPQ R12, CX
	JGE  store2
	VMOVUPS      (R11), Y8
	VMOVUPS      32(R11), Y9
	VMOVUPS      64(R11), Y10
	VMOVUPS      96(R11), Y11
	VBROADCASTSS (SI)(R12*4), Y12
	VBROADCASTSS (R13)(R12*4), Y13
	VFMADD231PS  Y8, Y12, Y0
	VFMADD231PS  Y9, Y12, Y1
	VFMADD231PS  Y10, Y12, Y2
	VFMADD231PS  Y11, Y12, Y3
	VFMADD231PS  Y8, Y13, Y4
	VFMADD231PS  Y9, Y13, Y5
	VFMADD231PS  Y10, Y13, Y6
	VFMADD231PS  Y11, Y13, Y7
	ADDQ R9, R11
	INCQ R12
	JMP  loop2

store2:
	VMOVUPS Y0, (DI)(R10*4)
	VMOVUPS Y1, 32(DI)(R10*4)
	VMOVUPS Y2, 64(DI)(R10*4)
	VMOVUPS Y3, 96(DI)(R10*4)
	VMOVUPS Y4, (BX)(R10*4)
	VMOVUPS Y5, 32(BX)(R10*4)
	VMOVUPS Y6, 64(BX)(R10*4)
	VMOVUPS Y7, 96(BX)(R10*4)
	ADDQ    $32, R10
	JMP     block2

done2:
	VZEROUPPER
	RET

// Lane numbers 0..7 as float32.
DATA lanes<>+0(SB)/4, $0x00000000
DATA lanes<>+4(SB)/4, $0x3F800000
DATA lanes<>+8(SB)/4, $0x40000000
DATA lanes<>+12(SB)/4, $0x40400000
DATA lanes<>+16(SB)/4, $0x40800000
DATA lanes<>+20(SB)/4, $0x40A00000
DATA lanes<>+24(SB)/4, $0x40C00000
DATA lanes<>+28(SB)/4, $0x40E00000
GLOBL lanes<>(SB), RODATA|NOPTR, $32

// hmin sets the low lane of X(dst) to the minimum of the 8 lanes of Y(src),
// using X15 as scratch.
#define HMIN(src, srcx, dst) \
	VEXTRACTF128 $1, src, X15 \
	VMINPS       X15, srcx, dst \
	VPERMILPS    $0x4E, dst, X15 \
	VMINPS       X15, dst, dst \
	VPERMILPS    $0xB1, dst, X15 \
	VMINPS       X15, dst, dst

// func pickAVX2(dots, norms []float32, kp int, out *[3]float32)
// For d[c] = norms[c] - 2*dots[c], c in [0, kp) (kp a multiple of 8):
// out[0] = the smallest d, out[1] = its index c as a float (the lowest on
// ties), out[2] = the second smallest d.
TEXT ·pickAVX2(SB), NOSPLIT, $0-64
	MOVQ dots_base+0(FP), SI
	MOVQ norms_base+24(FP), DX
	MOVQ kp+48(FP), CX
	MOVQ out+56(FP), DI
	MOVL $0x7F800000, AX
	VMOVD AX, X0
	VBROADCASTSS X0, Y0
	VMOVAPS Y0, Y1
	VMOVAPS Y0, Y10
	VXORPS Y2, Y2, Y2
	VMOVUPS lanes<>(SB), Y3
	MOVL $0x41000000, AX
	VMOVD AX, X4
	VBROADCASTSS X4, Y4
	MOVL $0xC0000000, AX
	VMOVD AX, X5
	VBROADCASTSS X5, Y5
	XORQ R8, R8

pickloop:
	CMPQ R8, CX
	JGE  pickreduce
	VMOVUPS     (SI)(R8*4), Y6
	VMOVUPS     (DX)(R8*4), Y7
	VFMADD231PS Y6, Y5, Y7
	VMAXPS      Y0, Y7, Y8
	VMINPS      Y1, Y8, Y1
	VCMPPS      $1, Y0, Y7, Y9
	VMINPS      Y0, Y7, Y0
	VBLENDVPS   Y9, Y3, Y2, Y2
	VADDPS      Y4, Y3, Y3
	ADDQ        $8, R8
	JMP         pickloop

pickreduce:
	// Y0: smallest per lane, Y1: second smallest per lane, Y2: index of
	// the smallest per lane, Y10: +Inf.
	HMIN(Y0, X0, X11)
	VBROADCASTSS X11, Y11           // m, the smallest
	VCMPPS       $0, Y11, Y0, Y12   // lanes holding m
	VBLENDVPS    Y12, Y2, Y10, Y13  // their indices, +Inf elsewhere
	HMIN(Y13, X13, X14)
	VBROADCASTSS X14, Y14           // the best index
	VCMPPS       $0, Y14, Y2, Y12   // the best lane
	VBLENDVPS    Y12, Y10, Y0, Y13  // smallest of the other lanes
	HMIN(Y13, X13, X6)
	VBLENDVPS    Y12, Y1, Y10, Y13  // second smallest of the best lane
	HMIN(Y13, X13, X7)
	VMINSS       X7, X6, X6
	VMOVSS       X11, (DI)
	VMOVSS       X14, 4(DI)
	VMOVSS       X6, 8(DI)
	VZEROUPPER
	RET

// func sqDistAVX2(x, c []float32) float32
// The squared distance between x and c; len(x) is a multiple of 8 and c is
// at least as long.
TEXT ·sqDistAVX2(SB), NOSPLIT, $0-52
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ c_base+24(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	XORQ R8, R8

sqloop:
	CMPQ R8, CX
	JGE  sqdone
	VMOVUPS     (SI)(R8*4), Y2
	VSUBPS      (DX)(R8*4), Y2, Y2
	VFMADD231PS Y2, Y2, Y0
	ADDQ        $8, R8
	CMPQ        R8, CX
	JGE         sqdone
	VMOVUPS     (SI)(R8*4), Y3
	VSUBPS      (DX)(R8*4), Y3, Y3
	VFMADD231PS Y3, Y3, Y1
	ADDQ        $8, R8
	JMP         sqloop

sqdone:
	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VPERMILPS    $0x4E, X0, X1
	VADDPS       X1, X0, X0
	VPERMILPS    $0xB1, X0, X1
	VADDSS       X1, X0, X0
	VMOVSS       X0, ret+48(FP)
	VZEROUPPER
	RET
