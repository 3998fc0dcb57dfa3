/* Lookup for arch/x86/extable.h. The table is tiny (one entry per use of a _safe
 * instruction) and consulted only when Keel takes an exception, so a linear scan. */
#include "arch/x86/extable.h"

extern const struct extable_entry __extable_start[], __extable_end[];

uint64_t extable_fixup(uint64_t rip)
{
    for (const struct extable_entry *e = __extable_start; e < __extable_end; e++)
        if (e->insn == rip)
            return e->fixup;
    return 0;
}
