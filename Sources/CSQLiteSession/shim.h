// SQLite's session extension (change capture and changeset apply). The system libsqlite3 is built with
// it, but sqlite3.h declares it only when these are defined.
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>
