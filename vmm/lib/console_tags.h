/* The words Keel's own console lines start with ("[cpu0] ACPI: ...", "[cpu1] VM hello:
 * ..."). A guest's lines start with its VM's name ("[cpu1] hello: ..."), so no VM may be
 * named like one of these (compared without case): then every line shows whose it is,
 * and a guest cannot forge Keel's. tests/system/console-tags.sh checks that every tag
 * the sources print is listed here. */
#ifndef KEEL_VMM_CONSOLE_TAGS_H
#define KEEL_VMM_CONSOLE_TAGS_H

#define KEEL_CONSOLE_TAGS(X)                                                                       \
    X("ACPI") X("BOOT") X("CONFIG") X("CONSOLE") X("CPU") X("EXCEPTION") X("FAULT") X("HPET") X("IOAPIC")     \
    X("IRQ") X("KEEL") X("LAPIC") X("MEM") X("MONITOR") X("PAGING") X("PANIC") X("PCI") X("POWER") X("SCHED")      \
    X("SMP") X("TIMER") X("UEFI") X("VM") X("VMM") X("VMX") X("palloc") X("pfree")

#endif
