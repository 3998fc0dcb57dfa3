/* See fake_vmcs.h. */
#include <string.h>

#include "tests/common/fake_vmcs.h"
#include "arch/x86/vmx/vmcs.h"

static uint64_t vmcs[0x8000];
/* Fields written since the last reset: clearing 256 KiB per fuzz input would cost more
 * than what the input exercises. Past the list's end the whole table is cleared. */
static uint16_t dirty[512];
static unsigned ndirty;
static int overflowed;

uint64_t fake_vmcs_get(uint32_t f)
{
    return vmcs[f & 0x7ffe];
}

void fake_vmcs_set(uint32_t f, uint64_t v)
{
    if (!vmcs[f & 0x7ffe] && v) {
        if (ndirty < sizeof dirty / sizeof dirty[0])
            dirty[ndirty++] = (uint16_t)(f & 0x7ffe);
        else
            overflowed = 1;
    }
    vmcs[f & 0x7ffe] = v;
}

void fake_vmcs_reset(void)
{
    if (overflowed)
        memset(vmcs, 0, sizeof vmcs);
    else
        while (ndirty)
            vmcs[dirty[--ndirty]] = 0;
    ndirty = 0;
    overflowed = 0;
}

enum vmx_status vmx_vmread_safe(uint32_t field, uint64_t *value)
{
    if (!vmcs_field_known(field))
        fake_vmcs_misuse("VMREAD of unknown VMCS field", field);
    uint64_t v = fake_vmcs_get(field);
    *value = VMCS_ENC_IS_HIGH(field) ? v >> 32 : v & vmcs_access_mask(field);
    return VMX_OK;
}

enum vmx_status vmx_vmwrite_safe(uint32_t field, uint64_t value)
{
    if (!vmcs_field_known(field) || VMCS_ENC_TYPE(field) == VMCS_TYPE_READ_ONLY)
        fake_vmcs_misuse("VMWRITE of unknown or read-only VMCS field", field);
    if (VMCS_ENC_IS_HIGH(field))
        fake_vmcs_set(field, (fake_vmcs_get(field) & 0xffffffffull) | (value << 32));
    else
        fake_vmcs_set(field, value & vmcs_access_mask(field));
    return VMX_OK;
}
