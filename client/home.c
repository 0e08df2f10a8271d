/*
 * The launcher's home directory and its files: where it is, making it private, and replacing
 * a file whole (write a temporary file, fsync, rename, fsync the directory), so whoever reads
 * a credential sees the old one or the new one, never a mix.
 */
#include "client/home.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define HOME_ENV		"POSTERN_HOME"
#define HOME_SUBDIR		"postern"
#define HOME_DIR_MODE		0700
#define HOME_FILE_MODE		0600

/* Make DIR and its missing parents, each 0700. */
static int
home_mkdirs(char *dir, char *err, size_t errlen)
{
	for (char *p = dir + 1;; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(dir, HOME_DIR_MODE) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s; set POSTERN_HOME to a directory you can write",
			    dir, strerror(errno));
			*p = c;
			return HOME_ERR;
		}
		*p = c;
		if (c == '\0')
			return 0;
	}
}

int
home_open(struct home *h, bool create, char *err, size_t errlen)
{
	const char *env = getenv(HOME_ENV), *base;
	struct passwd *pw;
	struct stat st;
	size_t n;
	int len;

	memset(h, 0, sizeof(*h));
	if (env != NULL && env[0] != '\0') {
		len = snprintf(h->dir, sizeof(h->dir), "%s", env);
	} else if ((base = getenv("XDG_CONFIG_HOME")) != NULL && base[0] == '/') {
		len = snprintf(h->dir, sizeof(h->dir), "%s/%s", base, HOME_SUBDIR);
	} else {
		if ((base = getenv("HOME")) == NULL || base[0] == '\0')
			base = (pw = getpwuid(getuid())) != NULL ? pw->pw_dir : NULL;
		if (base == NULL) {
			snprintf(err, errlen, "cannot find your home directory; set POSTERN_HOME");
			return HOME_ERR;
		}
		len = snprintf(h->dir, sizeof(h->dir), "%s/.config/%s", base, HOME_SUBDIR);
	}
	/* Room for "/" + a file name + a temporary suffix. */
	if (len < 0 || (size_t)len + 64 >= sizeof(h->dir)) {
		snprintf(err, errlen, "the postern home directory path is too long; set POSTERN_HOME to a shorter one");
		return HOME_ERR;
	}
	for (n = strlen(h->dir); n > 1 && h->dir[n - 1] == '/'; n--)
		h->dir[n - 1] = '\0';
	if (stat(h->dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s is not a directory; move it away or set POSTERN_HOME", h->dir);
			return HOME_ERR;
		}
		if (st.st_uid != getuid()) {
			snprintf(err, errlen, "%s belongs to another user; set POSTERN_HOME to a directory of yours", h->dir);
			return HOME_ERR;
		}
		return 0;
	}
	if (!create)
		return 0;
	if (home_mkdirs(h->dir, err, errlen) != 0)
		return HOME_ERR;
	/* mkdir's mode passed through the umask; the home must end up exactly private. */
	if (chmod(h->dir, HOME_DIR_MODE) != 0) {
		snprintf(err, errlen, "cannot make %s private: %s", h->dir, strerror(errno));
		return HOME_ERR;
	}
	return 0;
}

const char *
home_path(const struct home *h, const char *name, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s", h->dir, name);

	/* home_open() left room for our names; a cut path must not name another file. */
	if (n < 0 || (size_t)n >= size)
		snprintf(buf, size, "%s", "");
	return buf;
}

/* fsync the directory so the rename itself survives a crash. */
static void
home_sync_dir(const struct home *h)
{
	int fd = open(h->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

int
home_write(const struct home *h, const char *name, const void *data, size_t len, char *err, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	const char *p = data;
	size_t done = 0;
	int fd = -1, plen, r = HOME_ERR;

	home_path(h, name, path, sizeof(path));
	plen = snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", h->dir, name);
	if (plen < 0 || (size_t)plen >= sizeof(tmp) || path[0] == '\0') {
		snprintf(err, errlen, "the path of %s in %s is too long; set POSTERN_HOME to a shorter one", name, h->dir);
		return HOME_ERR;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot write %s: %s; check the permissions of %s", path, strerror(errno), h->dir);
		return HOME_ERR;
	}
	if (fchmod(fd, HOME_FILE_MODE) != 0)
		goto fail;
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		done += (size_t)n;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	home_sync_dir(h);
	return 0;
fail:
	snprintf(err, errlen, "cannot write %s: %s; check the free space and the permissions of %s", path,
	    strerror(errno ? errno : EIO), h->dir);
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

int
home_read(const struct home *h, const char *name, bool private, char **data, size_t *len, char *err,
    size_t errlen)
{
	char path[PATH_MAX], *buf = NULL;
	struct stat st;
	size_t done = 0;
	int fd, r = HOME_ERR;

	*data = NULL;
	*len = 0;
	home_path(h, name, path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT)
			return HOME_MISSING;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return HOME_ERR;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file; remove it and run postern login", path);
		goto out;
	}
	if (private && (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s may be read by other users, so postern will not use it; run chmod 600 %s",
		    path, path);
		goto out;
	}
	if ((size_t)st.st_size > HOME_FILE_MAX) {
		snprintf(err, errlen, "%s is larger than any file postern writes; remove it and run postern login", path);
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "out of memory reading %s", path);
		goto out;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "cannot read %s: %s", path, n < 0 ? strerror(errno) : "it shrank while read");
			goto out;
		}
		done += (size_t)n;
	}
	buf[done] = '\0';
	*data = buf;
	*len = done;
	buf = NULL;	/* transferred */
	r = 0;
out:
	home_free(buf, done);
	close(fd);
	return r;
}

void
home_free(char *data, size_t len)
{
	if (data == NULL)
		return;
	OPENSSL_cleanse(data, len);
	free(data);
}

int
home_remove(const struct home *h, const char *name, bool *existed, char *err, size_t errlen)
{
	char path[PATH_MAX];

	*existed = false;
	if (unlink(home_path(h, name, path, sizeof(path))) == 0) {
		*existed = true;
		return 0;
	}
	if (errno == ENOENT)
		return 0;
	snprintf(err, errlen, "cannot remove %s: %s; remove it by hand", path, strerror(errno));
	return HOME_ERR;
}

int
home_lock(const struct home *h, int *fd, char *err, size_t errlen)
{
	char path[PATH_MAX];

	home_path(h, HOME_LOCK, path, sizeof(path));
	if ((*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, HOME_FILE_MODE)) < 0) {
		snprintf(err, errlen, "cannot open %s: %s; check the permissions of %s", path, strerror(errno), h->dir);
		return HOME_ERR;
	}
	/* Not waiting: the other run may sit at a TOTP prompt for as long as its user likes. */
	if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errlen, "another postern login or logout is running with %s; let it finish, then try again",
		    h->dir);
		close(*fd);
		*fd = -1;
		return HOME_ERR;
	}
	return 0;
}

void
home_unlock(int fd)
{
	if (fd >= 0)
		close(fd);	/* closing drops the flock */
}

void
home_say(const char *fmt, ...)
{
	va_list ap;

	fputs("postern: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
