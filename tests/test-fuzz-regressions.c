/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Replays the fuzzing inputs through the fuzz targets' own checks, with the
 * ordinary compiler and under valgrind (meson test --setup=valgrind):
 *   tests/fuzz/regressions/    inputs that once failed (reader-NAME,
 *                              uri-NAME or encode-NAME; crashes found by
 *                              tools/fuzz.sh end up here once fixed)
 *   tests/fuzz/corpus-reader/  the seed corpora
 *   tests/fuzz/corpus-uri/
 *   tests/fuzz/corpus-encode/
 * Each input runs in a subprocess, so that one crash fails one test case.
 * The input format is the fuzz targets' (see tests/fuzz/fuzz-reader.c: the
 * first byte chooses the chunking and the limits).
 */

#include <string.h>

#define LLVMFuzzerInitialize fuzz_reader_initialize
#define LLVMFuzzerTestOneInput fuzz_reader_one_input
#include "fuzz/fuzz-reader.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput
#undef fail

#define LLVMFuzzerInitialize fuzz_uri_initialize
#define LLVMFuzzerTestOneInput fuzz_uri_one_input
#include "fuzz/fuzz-uri.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerInitialize fuzz_encode_initialize
#define LLVMFuzzerTestOneInput fuzz_encode_one_input
#include "fuzz/fuzz-encode.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput

/* The test data: file paths, alive (and reachable) until the end. */
static GPtrArray *paths;

typedef int (*OneInputFunc) (const uint8_t *data, size_t size);

static void
replay (gconstpointer data)
{
  const char *path = data;
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *dir = g_path_get_dirname (path);
  OneInputFunc func;

  if (g_str_has_suffix (dir, "corpus-reader") || g_str_has_prefix (base, "reader-"))
    func = fuzz_reader_one_input;
  else if (g_str_has_suffix (dir, "corpus-encode") || g_str_has_prefix (base, "encode-"))
    func = fuzz_encode_one_input;
  else
    func = fuzz_uri_one_input;

  if (g_test_subprocess ())
    {
      g_autofree char *contents = NULL;
      gsize len = 0;
      g_autoptr(GError) error = NULL;

      g_assert_true (g_file_get_contents (path, &contents, &len, &error));
      g_assert_no_error (error);
      func ((const uint8_t *) contents, len);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDOUT | G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* The first regression, spelled out: hiredis 0.14.1 refuses numbers with a
 * leading zero (and "-0"), so the framer must refuse them too, as a
 * protocol error from _feed(); not a g_warning() from _pop() and a
 * connection left waiting for its reply. */
static void
test_leading_zero (void)
{
  static const char *const streams[] = {
    ":01\r\n", "*01\r\n:1\r\n", "$01\r\na\r\n", ":-0\r\n", "*-0\r\n", "$00\r\n\r\n",
  };

  if (g_test_subprocess ())
    {
      for (guint i = 0; i < G_N_ELEMENTS (streams); i++)
        {
          RedisReader *reader = redis_reader_new (1024 * 1024, 4096, 1024, REDIS_READER_DEFAULT_MAX_DEPTH);
          GError *error = NULL;
          gboolean ok = redis_reader_feed (reader, streams[i], strlen (streams[i]), &error);
          RedisReply *reply = redis_reader_pop (reader);

          g_autofree char *escaped = g_strescape (streams[i], NULL);

          g_test_message ("stream %u: %s", i, escaped);
          g_assert_null (reply);
          g_assert_false (ok);
          g_assert_error (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL);
          g_error_free (error);
          redis_reader_free (reader);
        }
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDOUT | G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static void
add_dir (const char *subdir,
         const char *prefix)
{
  g_autofree char *dir_path = g_test_build_filename (G_TEST_DIST, "fuzz", subdir, NULL);
  g_autoptr(GDir) dir = g_dir_open (dir_path, 0, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (dir == NULL)
    return;
  while ((name = g_dir_read_name (dir)) != NULL)
    if (name[0] != '.' && (prefix == NULL || g_str_has_prefix (name, prefix)))
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    {
      const char *file = names->pdata[i];
      g_autofree char *test_path = g_strdup_printf ("/fuzz-regressions/%s/%s", subdir, file);
      char *file_path = g_build_filename (dir_path, file, NULL);

      g_ptr_array_add (paths, file_path);
      g_test_add_data_func (test_path, file_path, replay);
    }
}

int
main (int    argc,
      char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  /* A failing input fails its test case; the others still run. */
  if (!g_test_subprocess ())
    g_test_set_nonfatal_assertions ();

  paths = g_ptr_array_new_with_free_func (g_free);
  g_test_add_func ("/fuzz-regressions/reader/leading-zero", test_leading_zero);
  add_dir ("regressions", NULL);
  add_dir ("corpus-reader", NULL);
  add_dir ("corpus-uri", NULL);
  add_dir ("corpus-encode", NULL);

  ret = g_test_run ();
  g_ptr_array_unref (paths);
  return ret;
}
