/*
 * posternctl audit …: the auditor's tools. They read recording files directly (no posternd
 * needed): list them from their headers, check them, and with an auditor's secret key show,
 * replay, export and search what happened in them. See docs/audit.md.
 */
#ifndef POSTERN_CTL_AUDIT_H
#define POSTERN_CTL_AUDIT_H

#include <stdio.h>

/* Exit codes of posternctl audit (verify's, and every other subcommand's on the same terms). */
#define CTL_AUDIT_OK		0	/* intact */
#define CTL_AUDIT_TAMPERED	1	/* a recording does not verify */
#define CTL_AUDIT_USAGE		2	/* wrong arguments */
#define CTL_AUDIT_INCOMPLETE	3	/* verified prefix, never closed: crash or still being written */
#define CTL_AUDIT_UNREADABLE	4	/* no such recording, cannot read it, or the key does not fit */

/* Run `posternctl audit ARGV[1..]` (ARGV[0] is "audit"); the exit code. */
int ctl_audit_main(int argc, char **argv);
void ctl_audit_usage(FILE *out);

#endif
