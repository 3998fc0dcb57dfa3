/* Names for VMCS field encodings, for error messages and VMCS dumps. Generated from the
 * one list in vmcs_fields.h; the switch statements double as a compile-time proof that
 * no encoding is listed twice (duplicate case labels do not compile). */
#include "arch/x86/vmx/vmcs_fields.h"

/* Only bits 14:13 (width), 11:10 (type) and 9:1 (index) may be set in a listed
 * encoding: bit 0 would be a high access, bit 12 and bits 31:15 are reserved. */
#define VMCS_FIELD_CHECK(name, enc) \
    _Static_assert(((enc) & ~0x6ffeu) == 0, #name " has a malformed VMCS encoding");
VMCS_FIELDS(VMCS_FIELD_CHECK)
#undef VMCS_FIELD_CHECK

static const char *full_name(uint32_t enc)
{
    switch (enc) {
#define VMCS_FIELD_CASE(name, enc) \
    case (enc):                    \
        return #name;
        VMCS_FIELDS(VMCS_FIELD_CASE)
#undef VMCS_FIELD_CASE
    }
    return NULL;
}

static const char *high_name(uint32_t enc)
{
    switch (enc) {
#define VMCS_FIELD_CASE(name, enc) \
    case (enc):                    \
        return #name "_HIGH";
        VMCS_FIELDS(VMCS_FIELD_CASE)
#undef VMCS_FIELD_CASE
    }
    return NULL;
}

/* NULL when the encoding is neither a listed field nor the high half of a listed
 * 64-bit field (a high access to a field of any other width does not exist). */
static const char *lookup(uint32_t enc)
{
    if (!VMCS_ENC_IS_HIGH(enc))
        return full_name(enc);
    if (VMCS_ENC_WIDTH(enc) != VMCS_WIDTH_64)
        return NULL;
    return high_name(enc & ~1u);
}

const char *vmcs_field_name(uint32_t enc)
{
    const char *name = lookup(enc);
    return name ? name : "unknown VMCS field";
}

bool vmcs_field_known(uint32_t enc)
{
    return lookup(enc) != NULL;
}

const char *vmcs_width_name(unsigned width)
{
    static const char *const names[] = {
        [VMCS_WIDTH_16] = "16-bit",
        [VMCS_WIDTH_64] = "64-bit",
        [VMCS_WIDTH_32] = "32-bit",
        [VMCS_WIDTH_NATURAL] = "natural-width",
    };
    return width < ARRAY_SIZE(names) ? names[width] : "invalid width";
}
