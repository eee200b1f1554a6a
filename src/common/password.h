/*
 * password: yescrypt hashing through libxcrypt (crypt_rn), shared by mjs-api
 * (register, login) and mjsctl (user add, passwd).
 */
#ifndef MJS_COMMON_PASSWORD_H
#define MJS_COMMON_PASSWORD_H

#include <stddef.h>

#define PASSWORD_MIN 8
#define PASSWORD_MAX 256

/* Hashes password with a fresh salt into out. Returns 0 or -1. */
int password_hash(const char *password, char *out, size_t outlen);

/* Does password match the crypt(3) hash? Constant time in the comparison. */
int password_check(const char *password, const char *hash);

/* Spends the time of one check, for logins of unknown users. */
void password_waste(const char *password);

#endif
