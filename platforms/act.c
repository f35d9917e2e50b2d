/* act.c - picks the vector activation for this CPU. */
#include "platforms/act.h"

ActVecFn act_vec_avx2(void);
ActVecFn act_vec_avx512(void);
ActVecFn act_vec_neon(void);

ActVecFn act_vec_best(void)
{
#ifdef CRUN_HAVE_AVX512
    if (isa_allowed(ISA_AVX512))
        return act_vec_avx512();
#endif
#ifdef CRUN_HAVE_AVX2
    if (isa_allowed(ISA_AVX2))
        return act_vec_avx2();
#endif
#ifdef CRUN_HAVE_NEON
    if (isa_allowed(ISA_NEON))
        return act_vec_neon();
#endif
    return NULL;
}
