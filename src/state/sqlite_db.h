// Thin RAII layer over the sqlite3 C API: a connection with its own cache of prepared
// statements, and a borrowed statement handle that resets itself when released.
//
// A Connection is not thread-safe (it is opened SQLITE_OPEN_NOMUTEX): exactly one thread
// uses it at a time. The Store hands connections to threads (writer thread, reader pool).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace flowmesh::state {

// Converts the connection's last error into a Status; `what` says what was attempted.
Status SqliteError(sqlite3* db, int rc, std::string_view what);

// A cached prepared statement on loan. Binding errors are remembered and reported by the
// next Step(); the statement is reset and its bindings cleared when the loan ends.
class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameter indices are 1-based, as in SQLite.
  Statement& Bind(int index, std::string_view text);
  Statement& BindBlob(int index, std::string_view bytes);
  Statement& Bind(int index, double value);
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, int value) { return Bind(index, static_cast<int64_t>(value)); }
  Statement& BindNull(int index);

  // Advances: true when a row is available, false when the statement is done.
  Result<bool> Step();
  // Runs a statement that returns no rows.
  Status Run();

  // Column indices are 0-based, as in SQLite. NULL reads as "" / 0.
  std::string Text(int col) const;
  std::string Blob(int col) const;
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  int64_t Int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  int Int(int col) const { return sqlite3_column_int(stmt_, col); }

 private:
  void Release();
  void NoteBind(int rc, int index);

  sqlite3_stmt* stmt_ = nullptr;
  int bind_rc_ = SQLITE_OK;
  int bind_index_ = 0;
};

struct ConnectionOptions {
  // The writer switches the file to WAL and sets the sync level; readers are query-only.
  bool writer = false;
  bool synchronous_full = true;
  int busy_timeout_ms = 5000;
};

// One open database handle plus its prepared statements, keyed by SQL text.
class Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const std::string& path,
                                                  const ConnectionOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more statements that return no rows (DDL, PRAGMA, BEGIN…).
  Status Exec(const std::string& sql);
  // Returns the cached statement for `sql`, preparing it on first use.
  Result<Statement> Prepare(const std::string& sql);
  // True while no transaction is open on this connection.
  bool AutoCommit() const { return sqlite3_get_autocommit(db_) != 0; }
  sqlite3* handle() const { return db_; }
  // Rows changed by the last INSERT/UPDATE/DELETE on this connection.
  int Changes() const { return sqlite3_changes(db_); }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

// Steps `stmt` to the end, turning each row into a T with `read(stmt)`.
template <typename T, typename ReadFn>
Result<std::vector<T>> CollectRows(Statement& stmt, ReadFn read) {
  std::vector<T> out;
  for (;;) {
    FM_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    out.push_back(T(read(stmt)));
  }
}

}  // namespace flowmesh::state
