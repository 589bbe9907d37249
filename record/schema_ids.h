/* SPDX-License-Identifier: MIT */
#ifndef XR_RECORD_SCHEMA_IDS_H
#define XR_RECORD_SCHEMA_IDS_H

/* Field ids (= vtable slots) of schema/experience.fbs, shared by the builder
 * (record/experience.c) and the verifier (record/verify.c). The schema fixes
 * them with explicit (id: N) attributes; they never change. */

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "xring records are stored and read in host order, which must be little-endian"
#endif

enum {
	EXP_SEQ, EXP_T_NS, EXP_GAME_ID, EXP_PLAYER_ID, EXP_TURN, EXP_OBS,
	EXP_ACTION, EXP_REWARD, EXP_DONE, EXP_TRUNCATED, EXP_LEGAL_MASK,
	EXP_EXTRAS, EXP_APPLIED, EXP_APPLIED_BY, EXP_NFIELDS
};

enum { TEN_DTYPE, TEN_SHAPE, TEN_DATA, TEN_NFIELDS };

#endif
