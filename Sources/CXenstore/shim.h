#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <xenstore.h>
