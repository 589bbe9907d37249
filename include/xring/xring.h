/* SPDX-License-Identifier: MIT */
#ifndef XRING_XRING_H
#define XRING_XRING_H

/* Everything public: include this one header. */
#include "xring/agent.h"
#include "xring/arena.h"
#include "xring/error.h"
#include "xring/game.h"
#include "xring/games.h"
#include "xring/reader.h"
#include "xring/table.h"
#include "xring/record.h"
#include "xring/types.h"
#include "xring/version.h"
#include "xring/writer.h"

#endif
