/* Example FlowMesh plugin (plugin ABI 1.0), written in plain C to show the ABI needs
 * nothing else. It implements every hook kind:
 *   identity   bearer tokens from a file, one per line: "<token> <principal> <org_id> <scopes>"
 *              (scopes comma-separated); other tokens are "not mine".
 *   guard      refuses a workflow whose JSON contains the `deny` string.
 *   usage      appends each usage row to the `usage` file (JSON lines).
 *   permission ids listed in the `deny_ids` file (one per line, re-read on every call) are
 *              refused; listings then show only registered ids not listed there.
 *   registrar  remembers registered workflows/tasks and appends every call to `registry`.
 *   supplier   names every worker's supplier `supplier`.
 * Configuration (FLOWMESH_PLUGIN_CONFIG_STATIC_TOKENS): "key=value;key=value" with keys
 * tokens, usage, deny, deny_ids, registry, supplier.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowmesh/plugin.h"

#define MAX_TOKENS 64
#define MAX_IDS 4096
#define FIELD 256

typedef struct {
  char token[FIELD], principal[FIELD], org[FIELD], scopes[FIELD];
} Token;

typedef struct {
  char kind[16], id[64], org[64];
} Registered;

struct FlowmeshPlugin {
  const FlowmeshHostApi* host;
  pthread_mutex_t mu;
  Token tokens[MAX_TOKENS];
  int token_count;
  char usage_path[FIELD], deny[FIELD], deny_ids_path[FIELD], registry_path[FIELD],
      supplier[FIELD];
  Registered registered[MAX_IDS];
  int registered_count;
};

static void CopyField(char* dst, const char* src, size_t len) {
  if (len >= FIELD) len = FIELD - 1;
  memcpy(dst, src, len);
  dst[len] = '\0';
}

static void SetReason(char* reason, size_t cap, const char* text) {
  if (reason && cap > 0) snprintf(reason, cap, "%s", text);
}

static int LoadTokens(FlowmeshPlugin* p, const char* path, char* reason, size_t cap) {
  FILE* f = fopen(path, "r");
  if (!f) {
    char msg[512];
    snprintf(msg, sizeof msg, "cannot open tokens file %s", path);
    SetReason(reason, cap, msg);
    return FM_PLUGIN_ERROR;
  }
  char line[1024];
  while (fgets(line, sizeof line, f) && p->token_count < MAX_TOKENS) {
    Token* t = &p->tokens[p->token_count];
    if (line[0] == '#' || line[0] == '\n') continue;
    if (sscanf(line, "%255s %255s %255s %255s", t->token, t->principal, t->org, t->scopes) == 4) {
      p->token_count++;
    }
  }
  fclose(f);
  return FM_PLUGIN_OK;
}

/* Whether `id` is a line of the deny_ids file. */
static int Denied(FlowmeshPlugin* p, const char* id) {
  if (!p->deny_ids_path[0]) return 0;
  FILE* f = fopen(p->deny_ids_path, "r");
  if (!f) return 0;
  char line[512];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    found = strcmp(line, id) == 0;
  }
  fclose(f);
  return found;
}

static int AnyDenied(FlowmeshPlugin* p) {
  if (!p->deny_ids_path[0]) return 0;
  FILE* f = fopen(p->deny_ids_path, "r");
  if (!f) return 0;
  int c = fgetc(f);
  fclose(f);
  return c != EOF;
}

static void AppendLine(const char* path, const char* text) {
  if (!path[0]) return;
  FILE* f = fopen(path, "a");
  if (!f) return;
  fprintf(f, "%s\n", text);
  fclose(f);
}

void flowmesh_plugin_abi_version(uint32_t* major, uint32_t* minor) {
#ifdef FLOWMESH_EXAMPLE_WRONG_ABI
  /* Built a second time as a deliberately incompatible plugin for the refusal test. */
  *major = FLOWMESH_PLUGIN_ABI_MAJOR + 1;
#else
  *major = FLOWMESH_PLUGIN_ABI_MAJOR;
#endif
  *minor = FLOWMESH_PLUGIN_ABI_MINOR;
}

int flowmesh_plugin_create(const FlowmeshHostApi* host, const char* config, FlowmeshPlugin** out,
                           char* reason, size_t reason_cap) {
  FlowmeshPlugin* p = calloc(1, sizeof *p);
  if (!p) {
    SetReason(reason, reason_cap, "out of memory");
    return FM_PLUGIN_ERROR;
  }
  p->host = host;
  pthread_mutex_init(&p->mu, NULL);
  const char* c = config ? config : "";
  while (*c) {
    const char* end = strchr(c, ';');
    size_t len = end ? (size_t)(end - c) : strlen(c);
    const char* eq = memchr(c, '=', len);
    if (eq) {
      size_t klen = (size_t)(eq - c);
      const char* v = eq + 1;
      size_t vlen = len - klen - 1;
      char value[FIELD];
      CopyField(value, v, vlen);
      if (klen == 6 && strncmp(c, "tokens", 6) == 0) {
        if (LoadTokens(p, value, reason, reason_cap) != FM_PLUGIN_OK) {
          free(p);
          return FM_PLUGIN_ERROR;
        }
      } else if (klen == 5 && strncmp(c, "usage", 5) == 0) {
        CopyField(p->usage_path, v, vlen);
      } else if (klen == 4 && strncmp(c, "deny", 4) == 0) {
        CopyField(p->deny, v, vlen);
      } else if (klen == 8 && strncmp(c, "deny_ids", 8) == 0) {
        CopyField(p->deny_ids_path, v, vlen);
      } else if (klen == 8 && strncmp(c, "registry", 8) == 0) {
        CopyField(p->registry_path, v, vlen);
      } else if (klen == 8 && strncmp(c, "supplier", 8) == 0) {
        CopyField(p->supplier, v, vlen);
      }
    }
    c += len;
    if (*c == ';') c++;
  }
  if (host && host->log) host->log(1, "static_tokens plugin ready");
  *out = p;
  return FM_PLUGIN_OK;
}

void flowmesh_plugin_destroy(FlowmeshPlugin* p) {
  if (!p) return;
  pthread_mutex_destroy(&p->mu);
  free(p);
}

int flowmesh_identity_resolve(FlowmeshPlugin* p, const char* token, FlowmeshPrincipal* out) {
  for (int i = 0; i < p->token_count; i++) {
    if (strcmp(p->tokens[i].token, token) == 0) {
      p->host->principal_set(out, p->tokens[i].principal, p->tokens[i].org, p->tokens[i].scopes);
      return FM_PLUGIN_OK;
    }
  }
  return FM_PLUGIN_NOT_MINE;
}

int flowmesh_submission_check(FlowmeshPlugin* p, const char* principal_id, const char* org_id,
                              const char* workflow_json, char* reason, size_t reason_cap) {
  if (p->deny[0] && strstr(workflow_json, p->deny)) {
    char msg[512];
    snprintf(msg, sizeof msg, "workflows mentioning '%s' are not allowed", p->deny);
    SetReason(reason, reason_cap, msg);
    return FM_PLUGIN_DENIED;
  }
  return FM_PLUGIN_OK;
}

int flowmesh_usage_record(FlowmeshPlugin* p, const char* usage_json, char* reason,
                          size_t reason_cap) {
  if (!p->usage_path[0]) return FM_PLUGIN_OK;
  pthread_mutex_lock(&p->mu);
  FILE* f = fopen(p->usage_path, "a");
  if (f) {
    fprintf(f, "%s\n", usage_json);
    fclose(f);
  }
  pthread_mutex_unlock(&p->mu);
  if (!f) {
    SetReason(reason, reason_cap, "cannot open the usage file");
    return FM_PLUGIN_ERROR;
  }
  return FM_PLUGIN_OK;
}

int flowmesh_permission_accessible(FlowmeshPlugin* p, const char* principal_id,
                                   const char* org_id, const char* kind, const char* action,
                                   FlowmeshIdList* out) {
  if (!AnyDenied(p)) return FM_PLUGIN_ALL;
  pthread_mutex_lock(&p->mu);
  for (int i = 0; i < p->registered_count; i++) {
    Registered* r = &p->registered[i];
    if (strcmp(r->kind, kind) == 0 && strcmp(r->org, org_id) == 0 && !Denied(p, r->id)) {
      p->host->id_list_add(out, r->id);
    }
  }
  pthread_mutex_unlock(&p->mu);
  return FM_PLUGIN_OK;
}

int flowmesh_permission_require(FlowmeshPlugin* p, const char* principal_id, const char* org_id,
                                const char* kind, const char* action, const char* resource_id,
                                char* reason, size_t reason_cap) {
  if (Denied(p, resource_id)) {
    SetReason(reason, reason_cap, "listed in the deny file");
    return FM_PLUGIN_DENIED;
  }
  return FM_PLUGIN_OK;
}

int flowmesh_resource_register(FlowmeshPlugin* p, const char* kind, const char* id,
                               const char* org_id, const char* owner_id) {
  char line[512];
  snprintf(line, sizeof line, "register %s %s %s %s", kind, id, org_id, owner_id);
  pthread_mutex_lock(&p->mu);
  if (p->registered_count < MAX_IDS) {
    Registered* r = &p->registered[p->registered_count++];
    snprintf(r->kind, sizeof r->kind, "%s", kind);
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->org, sizeof r->org, "%s", org_id);
  }
  AppendLine(p->registry_path, line);
  pthread_mutex_unlock(&p->mu);
  return FM_PLUGIN_OK;
}

int flowmesh_resource_deregister(FlowmeshPlugin* p, const char* kind, const char* id) {
  char line[512];
  snprintf(line, sizeof line, "deregister %s %s", kind, id);
  pthread_mutex_lock(&p->mu);
  AppendLine(p->registry_path, line);
  pthread_mutex_unlock(&p->mu);
  return FM_PLUGIN_OK;
}

int flowmesh_resource_reconcile(FlowmeshPlugin* p, const char* kind, const char* ids_json) {
  char line[256];
  snprintf(line, sizeof line, "reconcile %s %zu-bytes", kind, strlen(ids_json));
  pthread_mutex_lock(&p->mu);
  AppendLine(p->registry_path, line);
  pthread_mutex_unlock(&p->mu);
  return FM_PLUGIN_OK;
}

int flowmesh_supplier_resolve(FlowmeshPlugin* p, const char* worker_id,
                              const char* worker_info_json, char* supplier_id,
                              size_t supplier_id_cap) {
  if (!p->supplier[0]) return FM_PLUGIN_NOT_MINE;
  snprintf(supplier_id, supplier_id_cap, "%s", p->supplier);
  return FM_PLUGIN_OK;
}
