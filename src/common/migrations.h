/*
 * migrations: the numbered SQL files of sql/, embedded at build time by
 * build-aux/embed-sql.sh so mjsctl migrate needs no files at run time.
 */
#ifndef MJS_MIGRATIONS_H
#define MJS_MIGRATIONS_H

struct migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct migration migrations[];
extern const int migrations_count;

#endif
