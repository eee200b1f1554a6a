/*
 * password: see password.h. crypt_data is large (~32 KiB), so it lives on the heap.
 */
#include "common/password.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

/* A yescrypt hash of a random password nobody knows. */
static const char dummy_hash[] = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7";

int password_hash(const char *password, char *out, size_t outlen)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	int rc = -1;

	if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)))
		return -1;
	cd = calloc(1, sizeof(*cd));
	if (!cd)
		return -1;
	if (crypt_rn(password, salt, cd, sizeof(*cd)) && cd->output[0] == '$' &&
	    strlen(cd->output) < outlen) {
		strcpy(out, cd->output);
		rc = 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

int password_check(const char *password, const char *hash)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	int ok = 0;

	if (!cd)
		return 0;
	if (crypt_rn(password, hash, cd, sizeof(*cd)) && cd->output[0] == '$') {
		size_t a = strlen(cd->output), b = strlen(hash);
		unsigned char diff = (unsigned char)(a != b);
		for (size_t i = 0; i < a && i < b; i++)
			diff |= (unsigned char)(cd->output[i] ^ hash[i]);
		ok = diff == 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

void password_waste(const char *password)
{
	(void)password_check(password, dummy_hash);
}
