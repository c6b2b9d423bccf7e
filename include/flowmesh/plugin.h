/* FlowMesh plugin ABI, version 1.0.
 *
 * A plugin is a shared library named in FLOWMESH_PLUGINS (colon- or comma-separated
 * paths). The server dlopen()s each one at start-up, calls flowmesh_plugin_abi_version()
 * and refuses the plugin (and stops, naming it) unless its major version equals the
 * server's and its minor version is not newer. It then calls flowmesh_plugin_create() and
 * looks up the optional hook functions below; a plugin implements the hooks it wants.
 *
 * Rules of the ABI:
 *  - Plain C, no C++ types or exceptions cross it. Every hook returns an int code
 *    (FM_PLUGIN_OK, …); failures are values, never longjmp or abort.
 *  - Handles are opaque. Plugins write results only through the FlowmeshHostApi
 *    functions given to flowmesh_plugin_create (they never link against the server).
 *  - Strings are NUL-terminated UTF-8, owned by the caller, valid only during the call.
 *  - Hooks may be called from several server threads at once: a plugin guards its own
 *    state. The usage sink is called from one dedicated thread.
 */
#ifndef FLOWMESH_PLUGIN_H_
#define FLOWMESH_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLOWMESH_PLUGIN_ABI_MAJOR 1
#define FLOWMESH_PLUGIN_ABI_MINOR 0

/* Return codes of every hook. */
#define FM_PLUGIN_OK 0        /* answered / allowed / done */
#define FM_PLUGIN_NOT_MINE 1  /* identity: token not issued by this plugin; supplier: no answer */
#define FM_PLUGIN_DENIED 2    /* guard / permission: refused; `reason` says why */
#define FM_PLUGIN_ALL 3       /* permission_accessible: no restriction for this kind */
#define FM_PLUGIN_ERROR 4     /* the plugin failed; `reason` says why */

typedef struct FlowmeshPlugin FlowmeshPlugin;       /* the plugin's own state */
typedef struct FlowmeshPrincipal FlowmeshPrincipal; /* filled by identity_resolve */
typedef struct FlowmeshIdList FlowmeshIdList;       /* filled by permission_accessible */

/* Functions the server lends to the plugin. `size` is sizeof(FlowmeshHostApi) of the
 * server: fields are only ever appended (minor versions). */
typedef struct FlowmeshHostApi {
  uint32_t size;
  /* scopes: space- or comma-separated, e.g. "workflow:read workflow:write". */
  void (*principal_set)(FlowmeshPrincipal* out, const char* principal_id, const char* org_id,
                        const char* scopes);
  void (*id_list_add)(FlowmeshIdList* out, const char* id);
  /* level: 0 debug, 1 info, 2 warn, 3 error. */
  void (*log)(int level, const char* message);
} FlowmeshHostApi;

/* ---- required ---- */
void flowmesh_plugin_abi_version(uint32_t* major, uint32_t* minor);
/* `config` is the value of FLOWMESH_PLUGIN_CONFIG_<NAME> (NAME: the library's file name
 * without "lib" and extension, upper-cased) or "". On failure return FM_PLUGIN_ERROR and
 * write the reason. */
int flowmesh_plugin_create(const FlowmeshHostApi* host, const char* config,
                           FlowmeshPlugin** out, char* reason, size_t reason_cap);
void flowmesh_plugin_destroy(FlowmeshPlugin* plugin);

/* ---- identity provider: bearer token -> principal, or FM_PLUGIN_NOT_MINE ---- */
int flowmesh_identity_resolve(FlowmeshPlugin* plugin, const char* token,
                              FlowmeshPrincipal* out);

/* ---- submission guard: FM_PLUGIN_OK or FM_PLUGIN_DENIED with a reason ---- */
int flowmesh_submission_check(FlowmeshPlugin* plugin, const char* principal_id,
                              const char* org_id, const char* workflow_json, char* reason,
                              size_t reason_cap);

/* ---- usage sink: one usage row (JSON object); a failure is logged, never fails a task ---- */
int flowmesh_usage_record(FlowmeshPlugin* plugin, const char* usage_json, char* reason,
                          size_t reason_cap);

/* ---- permission checker ----
 * kind: workflow | task | result | node | worker | system;
 * action: read | write | cancel | admin. */
int flowmesh_permission_accessible(FlowmeshPlugin* plugin, const char* principal_id,
                                   const char* org_id, const char* kind, const char* action,
                                   FlowmeshIdList* out);
int flowmesh_permission_require(FlowmeshPlugin* plugin, const char* principal_id,
                                const char* org_id, const char* kind, const char* action,
                                const char* resource_id, char* reason, size_t reason_cap);

/* ---- resource registrar ----
 * reconcile: called once at start-up per kind with the JSON array of the ids that exist. */
int flowmesh_resource_register(FlowmeshPlugin* plugin, const char* kind, const char* id,
                               const char* org_id, const char* owner_id);
int flowmesh_resource_deregister(FlowmeshPlugin* plugin, const char* kind, const char* id);
int flowmesh_resource_reconcile(FlowmeshPlugin* plugin, const char* kind, const char* ids_json);

/* ---- supplier resolver: worker -> supplier id stamped on the task at dispatch ---- */
int flowmesh_supplier_resolve(FlowmeshPlugin* plugin, const char* worker_id,
                              const char* worker_info_json, char* supplier_id,
                              size_t supplier_id_cap);

#ifdef __cplusplus
}
#endif

#endif /* FLOWMESH_PLUGIN_H_ */
