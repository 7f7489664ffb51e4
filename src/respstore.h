/* Stored responses of the Responses API in MariaDB (sluice_settings.
 * responses_store, schema/003_responses.sql): what previous_response_id and
 * GET/DELETE /v1/responses/{id} need. A row belongs to the key that made
 * it and expires after responses_store_max_age_days. Every call runs one
 * short statement on the request thread's connection. */
#ifndef SL_RESPSTORE_H
#define SL_RESPSTORE_H

#include <jansson.h>

struct sl_request;

/* The conversation (chat messages, the answer last) of the caller's
 * response id: *messages a new reference (a JSON array). SL_OK,
 * SL_ERR_NOT_FOUND (no such response of this key, or expired),
 * SL_ERR_DB_UNAVAILABLE / SL_ERR_DB, SL_ERR_NOMEM. */
int sl_respstore_conversation(struct sl_request *req, const char *id, json_t **messages);

/* The stored Response object's text (arena) of the caller's id. Same
 * statuses. */
int sl_respstore_response(struct sl_request *req, const char *id, char **text, size_t *len);

/* Deletes the caller's id. SL_OK, SL_ERR_NOT_FOUND or a database status. */
int sl_respstore_delete(struct sl_request *req, const char *id);

/* Keeps a response: its conversation (messages, borrowed) and the Response
 * sent (borrowed). Over responses_store_max_bytes it is not kept (logged).
 * Also deletes a few expired rows. Failures are logged, never the client's
 * business. */
void sl_respstore_save(struct sl_request *req, const char *id, const json_t *messages,
                       const json_t *response);

#endif
