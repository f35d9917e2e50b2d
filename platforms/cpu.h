/* cpu.h - which instruction sets this CPU has (from cpuinfo, or from the kernel's
 * hardware capabilities in builds without it) and which crun may use. */
#ifndef CRUN_PLATFORMS_CPU_H
#define CRUN_PLATFORMS_CPU_H

#include <stdbool.h>

typedef enum Isa {
    ISA_SCALAR = 0, /* portable C */
    ISA_AVX2,       /* x86-64 AVX2 + FMA + F16C */
    ISA_AVX512,     /* x86-64 AVX-512 F/BW/DQ/VL */
    ISA_AVX512VNNI, /* AVX-512 plus VNNI (8-bit dot products: the int8 kernels) */
    ISA_NEON,       /* aarch64 Advanced SIMD */
    ISA_NEONDOT,    /* NEON plus the ARMv8.2 dot product (SDOT: the int8 kernels) */
    ISA_NEONFP16,   /* NEONDOT plus ARMv8.2 half-precision vector arithmetic (the kernels
                       of float16-weight models compute in float16) */
    ISA_COUNT
} Isa;

const char *isa_name(Isa isa);
/* Parses "scalar", "avx2", ...; returns false on an unknown name. */
bool isa_parse(const char *name, Isa *out);
/* True when kernels of this ISA may run: the CPU has it and it is not above the limit
 * set by isa_set_limit or the CRUN_ISA environment variable. */
bool isa_allowed(Isa isa);
/* Best ISA allowed here. */
Isa isa_best(void);
/* The float-vector level of an ISA: the integer extensions (VNNI, dot product) add no
 * float instructions, so their float kernels are those of the base ISA. */
Isa isa_base(Isa isa);
/* Caps the ISAs kernels may use (process-wide); ISA_COUNT removes the cap. */
void isa_set_limit(Isa limit);
Isa isa_get_limit(void);
/* A further cap for the calling thread only (ISA_COUNT: none); returns the one it
 * replaces. Executors of a compiled model plan and run under the model's ISA with it (and
 * hand it to their workers), so its kernels and packed blocks are the ones in the file,
 * whatever else the process runs. */
Isa isa_set_thread_limit(Isa limit);
Isa isa_get_thread_limit(void);
/* Number of logical processors (at least 1). */
int cpu_count(void);

#endif
