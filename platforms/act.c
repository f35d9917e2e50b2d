/* act.c - picks the vector activation for this CPU. */
#include "platforms/act.h"

ActVecFn act_vec_avx2(void);
ActVecFn act_vec_avx512(void);
ActVecFn act_vec_neon(void);

ActVecFn act_vec_for(Isa isa)
{
    switch (isa_base(isa)) {
#ifdef CRUN_HAVE_AVX512
    case ISA_AVX512: return act_vec_avx512();
#endif
#ifdef CRUN_HAVE_AVX2
    case ISA_AVX2: return act_vec_avx2();
#endif
#ifdef CRUN_HAVE_NEON
    case ISA_NEON: return act_vec_neon();
#endif
    default: return NULL;
    }
}

ActVecFn act_vec_best(void)
{
    for (int isa = ISA_COUNT - 1; isa > ISA_SCALAR; isa--) {
        ActVecFn fn = isa_allowed((Isa)isa) ? act_vec_for((Isa)isa) : NULL;
        if (fn)
            return fn;
    }
    return NULL;
}
