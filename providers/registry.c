/* The one table of provider adapters. Adding a protocol: one file, one line
 * here, one line in Makefile.am. */
#include <stddef.h>
#include <string.h>

#include "log.h"
#include "provider.h"
#include "status.h"

extern const struct sl_provider sl_provider_openai;
extern const struct sl_provider sl_provider_mock;
extern const struct sl_provider sl_provider_anthropic;

static const struct sl_provider *const registry[] = {
    &sl_provider_openai,
    &sl_provider_mock,
    &sl_provider_anthropic,
    NULL
};

const struct sl_provider *sl_provider_find(const char *name)
{
    for (size_t i = 0; registry[i] != NULL; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

int sl_provider_registry_check(void)
{
    for (size_t i = 0; registry[i] != NULL; i++) {
        if (registry[i]->abi != SL_PROVIDER_ABI) {
            sl_log(SL_LOG_ERROR, NULL, "provider %s: ABI %u, expected %u",
                   registry[i]->name, registry[i]->abi, SL_PROVIDER_ABI);
            return SL_ERR_INTERNAL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(registry[i]->name, registry[j]->name) == 0) {
                sl_log(SL_LOG_ERROR, NULL, "provider %s registered twice", registry[i]->name);
                return SL_ERR_INTERNAL;
            }
    }
    return SL_OK;
}
