/* fwdint.h - fwd.c's table of hints (fwdhint.c): which host a VM name
 * lives on, as learnt here (a create forwarded from here, a cluster list),
 * for the moment the names replica lags. Loop thread only. */
#ifndef BX_FWDINT_H
#define BX_FWDINT_H

void fwdhint_set(const char *name, const char *host, double timeout);
void fwdhint_drop(const char *name);
double fwdhint_timeout(const char *name);   /* the VM's default timeout; 0 unknown */

#endif
