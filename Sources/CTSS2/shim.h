#pragma once
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

// Response-code macros built from casts (TPM2_RC_RETRY etc.) import, but the layer and
// format masks below are clearer as functions.

/// The TSS2 layer of a return code (bits 16..23); 0 means the TPM itself answered.
static inline uint32_t CTSS2_rc_layer(TSS2_RC rc) { return rc & TSS2_RC_LAYER_MASK; }

/// The TPM response code with the layer removed.
static inline uint32_t CTSS2_rc_base(TSS2_RC rc) { return rc & ~(uint32_t)TSS2_RC_LAYER_MASK; }
