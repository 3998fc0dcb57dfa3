/* The VMCS as host tests and fuzzers see it: a table indexed by field encoding behind
 * the real accessors' vmx_vmread_safe/vmx_vmwrite_safe, with the width and read-only
 * rules of the real instructions. Link tests/common/fake_vmcs.c with
 * arch/x86/vmx/vmcs_fields.c; the harness defines fake_vmcs_misuse, its way of failing
 * on an access a real VMCS would refuse. */
#ifndef KEEL_TESTS_FAKE_VMCS_H
#define KEEL_TESTS_FAKE_VMCS_H

#include <stdint.h>

uint64_t fake_vmcs_get(uint32_t field);
void fake_vmcs_set(uint32_t field, uint64_t value);
/* Back to all zeroes; cheap after a few writes, which fuzzers rely on. */
void fake_vmcs_reset(void);

/* Provided by the harness: a VMREAD/VMWRITE of an unknown field, or a VMWRITE of a
 * read-only one. Must not return normally for tests that want to stop there. */
void fake_vmcs_misuse(const char *what, uint32_t field);

#endif
