/* bal_report: what a replay reports: the JSON report (the contract's section 7 keys plus the replay's
 * own), a short text summary, and an SVG of the first days (PV, base load, grid, machine runs). Pure:
 * it writes into memory or into a FILE* the caller opened. */
#ifndef BAL_REPORT_H
#define BAL_REPORT_H
#include <stdbool.h>
#include <stdio.h>

#include "bal_dispatch.h"
#include "bal_model.h"
#include "bal_replay.h"
#include "bal_series.h"

#define BAL_REPORT_SVG_DAYS 14 /* days drawn at most */

/* What the report says about its inputs. Strings are borrowed for the call. */
struct bal_report_info {
    const char *pv_file, *load_file;
    const struct bal_series *pv, *load;
    const char *forecast_file, *prices_file;      /* NULL: not given */
    const struct bal_series *forecast;            /* NULL: none */
    const struct bal_replay_prices *prices;       /* NULL: none */
    double pv_scale, load_scale;
    enum bal_strategy strategy;
    bool oracle;
};

/* "plan", "surplus", "immediate" ("?" out of range). */
const char *bal_report_strategy_name(enum bal_strategy s);
/* The inverse; returns 0, or -EINVAL for another name. */
int bal_report_strategy_parse(const char *name, enum bal_strategy *out);

/* The report as indented JSON text, ending in a newline; the caller frees it. Energies in kWh
 * rounded to Wh, percentages to 0.01, powers to 0.1 W, plan times to 0.001 ms. Never NULL. */
char *bal_report_json(const struct bal_config *cfg, const struct bal_replay_result *r, const struct bal_report_info *in);

/* A few lines for a person: totals, jobs, inputs' gaps and faults. */
void bal_report_summary(FILE *f, const struct bal_replay_result *r, const struct bal_report_info *in);

/* The SVG of the traced days (at most BAL_REPORT_SVG_DAYS; days without a trace are skipped): per day
 * PV as an area, base load and grid (import up, export down) as lines, and one lane per machine with
 * its runs as bars. Returns 0, or -EIO when writing to f failed. */
int bal_report_svg(FILE *f, const struct bal_config *cfg, const struct bal_replay_result *r,
                   const struct bal_report_info *in);

#endif
