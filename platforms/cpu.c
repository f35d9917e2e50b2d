/* cpu.c - CPU feature detection through cpuinfo, with an override for testing. */
#include "platforms/cpu.h"

#include <cpuinfo.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const isa_names[ISA_COUNT] = {"scalar", "avx2", "avx512", "avx512vnni", "neon", "neondot"};
static bool has_isa[ISA_COUNT];
static int n_cpus = 1;
static Isa isa_limit = ISA_COUNT;
static _Thread_local Isa thread_limit = ISA_COUNT;
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

static void detect(void)
{
    has_isa[ISA_SCALAR] = true;
    if (cpuinfo_initialize()) {
#if defined(__x86_64__) || defined(__i386__)
        has_isa[ISA_AVX2] = cpuinfo_has_x86_avx2() && cpuinfo_has_x86_fma3() && cpuinfo_has_x86_f16c();
        has_isa[ISA_AVX512] = has_isa[ISA_AVX2] && cpuinfo_has_x86_avx512f() && cpuinfo_has_x86_avx512bw() &&
                              cpuinfo_has_x86_avx512dq() && cpuinfo_has_x86_avx512vl();
        has_isa[ISA_AVX512VNNI] = has_isa[ISA_AVX512] && cpuinfo_has_x86_avx512vnni();
#elif defined(__aarch64__)
        has_isa[ISA_NEON] = cpuinfo_has_arm_neon();
        has_isa[ISA_NEONDOT] = has_isa[ISA_NEON] && cpuinfo_has_arm_neon_dot();
#endif
        n_cpus = (int)cpuinfo_get_processors_count();
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
    if (isa == ISA_NEONDOT)
        return ISA_NEON;
    return isa;
}

/* The levels nest within a family (avx512vnni > avx512 > avx2, neondot > neon): a limit
 * allows its own level and those below it. */
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
