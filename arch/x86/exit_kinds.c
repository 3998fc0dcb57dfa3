/* Names of the exit kinds for reports. */
#include "arch/x86/exit_kinds.h"

static const char *const kind_names[] = {
#define EXIT_KIND_NAME(name, text) [EXIT_KIND_##name] = text,
    EXIT_KINDS(EXIT_KIND_NAME)
#undef EXIT_KIND_NAME
};

const char *exit_kind_name(enum exit_kind kind)
{
    return (unsigned)kind < EXIT_KIND_COUNT ? kind_names[kind] : kind_names[EXIT_KIND_OTHER];
}
