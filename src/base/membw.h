/* Measures how fast this machine streams memory into the cores, the roofline that decode at
 * small batch sizes runs against. Reads a buffer much larger than the caches on every thread of
 * the pool and reports the best of a few passes. */
#ifndef SGLC_BASE_MEMBW_H
#define SGLC_BASE_MEMBW_H

#include <stddef.h>

#include "base/threadpool.h"

/* Bytes per second; 0 if the buffer could not be allocated. */
double membw_measure_read(threadpool *tp, size_t bytes);
/* Peak resident set size of this process (VmHWM), in bytes; 0 if unknown. */
size_t membw_peak_rss(void);
/* Current resident set size (VmRSS), in bytes; 0 if unknown. */
size_t membw_current_rss(void);

#endif
