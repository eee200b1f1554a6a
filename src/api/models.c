/*
 * models: GET /api/models, the chat models users may pick: every model an
 * upstream of mjs.conf names (upstream.NAME.models; patterns like "gpt-*" are
 * accepted on send but not listed), in file order, each once, with its kind and
 * the upstream serving it; "default" is what a message without a model uses.
 * The answer is the configuration's: it changes with a restart, not by event.
 */
#include "api/handlers.h"

#include <json-c/json.h>
#include <string.h>

const char *models_default(const struct config *cfg)
{
	if (cfg->chat_model[0] && config_model_upstream(cfg, cfg->chat_model))
		return cfg->chat_model;		/* chat_model names the default, as it always did */
	for (int i = 0; i < cfg->nupstreams; i++)
		for (int k = 0; k < cfg->upstreams[i].nmodels; k++)
			if (!strchr(cfg->upstreams[i].models[k], '*'))
				return cfg->upstreams[i].models[k];
	return NULL;
}

void models_list(struct call *c)
{
	const struct config *cfg = c->app->cfg;
	struct json_object *root = json_object_new_object(), *items = json_object_new_array();
	const char *def = models_default(cfg);

	for (int i = 0; i < cfg->nupstreams; i++) {
		const struct config_upstream *u = &cfg->upstreams[i];
		for (int k = 0; k < u->nmodels; k++) {
			const char *name = u->models[k];
			struct json_object *m;
			if (strchr(name, '*') || config_model_upstream(cfg, name) != u)
				continue;	/* a pattern, or listed by an earlier upstream */
			m = json_object_new_object();
			json_object_object_add(m, "name", json_object_new_string(name));
			json_object_object_add(m, "kind", json_object_new_string("chat"));
			json_object_object_add(m, "upstream", json_object_new_string(u->name));
			json_object_object_add(m, "protocol", json_object_new_string(config_protocol_name(u->protocol)));
			json_object_array_add(items, m);
		}
	}
	json_object_object_add(root, "items", items);
	json_object_object_add(root, "default", def ? json_object_new_string(def) : NULL);
	http_json(c->resp, 200, json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
								     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}
