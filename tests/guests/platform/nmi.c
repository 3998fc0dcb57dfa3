#include "guest.h"
#include "intr.h"
#include "nmi.h"
#include "report.h"
#include "timing.h"

#define WAIT_MS 100

static bool wait_nmis(uint32_t want)
{
    uint64_t dl = deadline_ms(WAIT_MS);
    while (counts.nmi < want && !expired(dl))
        __asm__ volatile("pause");
    return counts.nmi >= want;
}

void nmi_check(uint32_t bsp_id)
{
    /* Interrupts stay off: NMIs do not care, and nothing else may get in between. */
    uint32_t n0 = counts.nmi;
    if (!lapic_send(bsp_id, ICR_NMI) || !wait_nmis(n0 + 1)) {
        fail("nmi", "an NMI to APIC ID %u through the ICR never arrived (%u taken)", bsp_id, counts.nmi - n0);
        return;
    }
    counts.nmi_resend = 1;
    if (!lapic_send(bsp_id, ICR_NMI) || !wait_nmis(n0 + 3)) {
        fail("nmi-blocked", "of an NMI and the one its handler sent itself, %u arrived", counts.nmi - n0 - 1);
        return;
    }
    delay_us(1000);
    if (counts.nmi_nested || counts.nmi != n0 + 3)
        fail("nmi-blocked", "%u NMIs taken inside the NMI handler, %u in all (want 0 and 3)", counts.nmi_nested,
             counts.nmi - n0);
    else
        ok("nmi: a self-NMI through the ICR arrived; one sent from the NMI handler waited for its IRET");
}
