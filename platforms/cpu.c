/* cpu.c - CPU feature detection through cpuinfo (or, in builds without it, the
 * compiler's x86 feature checks and the kernel's aarch64 hardware capabilities), with an
 * override for testing. */
#include "platforms/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef CRUN_NO_CPUINFO
#if defined(__aarch64__)
#include <sys/auxv.h>
#endif
#else
#include <cpuinfo.h>
#endif

static const char *const isa_names[ISA_COUNT] = {"scalar", "avx2", "avx512", "avx512vnni", "neon", "neondot",
                                                 "neonfp16"};
static bool has_isa[ISA_COUNT];
static int n_cpus = 1;
static Isa isa_limit = ISA_COUNT;
static _Thread_local Isa thread_limit = ISA_COUNT;
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

/* The CPU's features as cpuinfo names them; false where unknown. */
typedef struct Features {
    bool avx2, fma3, f16c, avx512f, avx512bw, avx512dq, avx512vl, avx512vnni;
    bool neon, neon_dot, neon_fp16_arith;
    int processors;
} Features;

#ifdef CRUN_NO_CPUINFO
static bool read_features(Features *f)
{
#if defined(__x86_64__) || defined(__i386__)
    /* The compiler's checks consult CPUID and whether the OS saves the vector state. */
    __builtin_cpu_init();
    f->avx2 = __builtin_cpu_supports("avx2");
    f->fma3 = __builtin_cpu_supports("fma");
    f->f16c = __builtin_cpu_supports("f16c");
    f->avx512f = __builtin_cpu_supports("avx512f");
    f->avx512bw = __builtin_cpu_supports("avx512bw");
    f->avx512dq = __builtin_cpu_supports("avx512dq");
    f->avx512vl = __builtin_cpu_supports("avx512vl");
    f->avx512vnni = __builtin_cpu_supports("avx512vnni");
#elif defined(__aarch64__)
    /* Linux's AT_HWCAP bits: ASIMD (1), ASIMDHP (10, half-precision vector arithmetic),
     * ASIMDDP (20, dot product). */
    unsigned long hw = getauxval(AT_HWCAP);
    f->neon = hw & (1ul << 1);
    f->neon_fp16_arith = hw & (1ul << 10);
    f->neon_dot = hw & (1ul << 20);
#endif
    f->processors = 0; /* sysconf below */
    return true;
}
#else
static bool read_features(Features *f)
{
    if (!cpuinfo_initialize())
        return false;
#if defined(__x86_64__) || defined(__i386__)
    f->avx2 = cpuinfo_has_x86_avx2();
    f->fma3 = cpuinfo_has_x86_fma3();
    f->f16c = cpuinfo_has_x86_f16c();
    f->avx512f = cpuinfo_has_x86_avx512f();
    f->avx512bw = cpuinfo_has_x86_avx512bw();
    f->avx512dq = cpuinfo_has_x86_avx512dq();
    f->avx512vl = cpuinfo_has_x86_avx512vl();
    f->avx512vnni = cpuinfo_has_x86_avx512vnni();
#elif defined(__aarch64__)
    f->neon = cpuinfo_has_arm_neon();
    f->neon_dot = cpuinfo_has_arm_neon_dot();
    f->neon_fp16_arith = cpuinfo_has_arm_neon_fp16_arith();
#endif
    f->processors = (int)cpuinfo_get_processors_count();
    return true;
}
#endif

static void detect(void)
{
    has_isa[ISA_SCALAR] = true;
    Features f = {0};
    if (read_features(&f)) {
        has_isa[ISA_AVX2] = f.avx2 && f.fma3 && f.f16c;
        has_isa[ISA_AVX512] = has_isa[ISA_AVX2] && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl;
        has_isa[ISA_AVX512VNNI] = has_isa[ISA_AVX512] && f.avx512vnni;
        has_isa[ISA_NEON] = f.neon;
        has_isa[ISA_NEONDOT] = f.neon && f.neon_dot;
        has_isa[ISA_NEONFP16] = has_isa[ISA_NEONDOT] && f.neon_fp16_arith;
        n_cpus = f.processors;
    }
    if (n_cpus < 1) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_cpus = n > 0 ? (int)n : 1;
    }
    const char *env = getenv("CRUN_ISA");
    Isa lim;
    if (env && *env && isa_parse(env, &lim))
        isa_limit = lim;
}

const char *isa_name(Isa isa) { return isa < ISA_COUNT ? isa_names[isa] : "unknown"; }

bool isa_parse(const char *name, Isa *out)
{
    for (int i = 0; i < ISA_COUNT; i++)
        if (strcmp(name, isa_names[i]) == 0) {
            *out = (Isa)i;
            return true;
        }
    return false;
}

Isa isa_base(Isa isa)
{
    if (isa == ISA_AVX512VNNI)
        return ISA_AVX512;
    if (isa == ISA_NEONDOT || isa == ISA_NEONFP16)
        return ISA_NEON;
    return isa;
}

/* The levels nest within a family (avx512vnni > avx512 > avx2, neonfp16 > neondot >
 * neon): a limit allows its own level and those below it. */
static bool within(Isa isa, Isa limit)
{
    if (limit == ISA_COUNT || isa == ISA_SCALAR)
        return true;
    bool x86 = isa <= ISA_AVX512VNNI, limit_x86 = limit <= ISA_AVX512VNNI;
    return x86 == limit_x86 && isa <= limit;
}

static bool isa_within_limit(Isa isa) { return within(isa, isa_limit) && within(isa, thread_limit); }

Isa isa_set_thread_limit(Isa limit)
{
    Isa prev = thread_limit;
    thread_limit = limit;
    return prev;
}

Isa isa_get_thread_limit(void) { return thread_limit; }

bool isa_allowed(Isa isa)
{
    pthread_once(&detect_once, detect);
    return isa < ISA_COUNT && has_isa[isa] && isa_within_limit(isa);
}

Isa isa_best(void)
{
    for (int i = ISA_COUNT - 1; i > 0; i--)
        if (isa_allowed((Isa)i))
            return (Isa)i;
    return ISA_SCALAR;
}

void isa_set_limit(Isa limit)
{
    pthread_once(&detect_once, detect);
    isa_limit = limit;
}

Isa isa_get_limit(void)
{
    pthread_once(&detect_once, detect);
    return isa_limit;
}

int cpu_count(void)
{
    pthread_once(&detect_once, detect);
    return n_cpus;
}
