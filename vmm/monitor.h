/* The operator console on COM1's input. Typed bytes go to the VM the console is
 * attached to (its UART's input queue, uart16550_receive); Ctrl-A is the prefix key, as in QEMU:
 *   Ctrl-A c        opens the monitor, or closes it again
 *   Ctrl-A Ctrl-A   sends one Ctrl-A to the attached VM
 *   Ctrl-A h or ?   says which keys there are
 * The monitor reads command lines (help lists them): list the VMs and their vCPUs,
 * a VM's statistics table, its JSON Lines dump and a reset of its statistics, pause,
 * resume and stop a VM, attach the input to one (which closes the monitor) or detach
 * it. Its answers are Keel console lines tagged "MONITOR:". Commands run on whichever
 * CPU found the input (console_service), one at a time. */
#ifndef KEEL_VMM_MONITOR_H
#define KEEL_VMM_MONITOR_H

#include "vmm/lib/types.h"

#define MONITOR_PREFIX_KEY 0x01 /* Ctrl-A */

/* Takes COM1's input from now on (once the VMs exist). */
void monitor_start(void);
/* One typed byte (what console_service hands over); exposed for host tests. */
void monitor_input(char c);

#endif
