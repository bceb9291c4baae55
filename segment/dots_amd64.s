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
