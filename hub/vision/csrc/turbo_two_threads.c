/*
 * One JPEG decoded by libjpeg-turbo on two threads: the calling thread runs the entropy
 * (Huffman) decoder, a second thread runs everything after it (reduced IDCT, upsampling,
 * colour conversion) on the rows the first one has finished.
 *
 * Why: at the DCT scales the hub reads photos at (1/2-1/8) entropy decoding is most of the
 * work and cannot be split without restart markers, but the rest of the pipeline can run
 * beside it. The pixels are libjpeg-turbo's own: the second thread calls the library's own
 * IDCT, upsampling and colour conversion through its normal output pass
 * (jpeg_read_scanlines); only the coefficient controller's output step is replaced, by a copy
 * of jdcoefct.c's decompress_onepass that takes its coefficients from a ring of decoded iMCU
 * rows instead of decoding them itself. The input side is the same loop with the IDCT taken
 * out. So the output is meant to be bit-identical to tj3Decompress8 with the same settings
 * (checked by probe.c beside this file on 1920x1080 4:2:0, 4:2:2 and 4:4:4 files at 1/1, 1/2,
 * 1/4 and 1/8; not on greyscale, restart markers or odd sizes).
 *
 * PROTOTYPE, not built or called by the crate: measured slower than the one-thread decode on
 * the 2-core dev machine (see the vision README, third round), so it was not wired in.
 *
 * Only baseline/extended sequential, single-scan, 8-bit, 1- or 3-component files are taken
 * (hub_t2_open answers HUB_T2_DECLINED for anything else; the caller then uses TurboJPEG).
 *
 * Errors: libjpeg reports errors with longjmp. Each thread has its own jmp_buf (thread-local),
 * so a longjmp never crosses threads or Rust frames: every entry point below sets its own
 * setjmp before calling into libjpeg. Warnings are errors (as TurboJPEG's
 * TJPARAM_STOPONWARNING). When one thread fails it raises `failed` and wakes the other, which
 * stops at its next row.
 */

#define JPEG_INTERNALS
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "jpeglib.h"

#define HUB_T2_OK 0
#define HUB_T2_DECLINED 1
#define HUB_T2_ERROR (-1)

/* iMCU rows buffered between the two threads. */
#define RING_SLOTS 8

#define MESSAGE_LEN 200

typedef struct hub_t2 hub_t2;

/* Per-thread error target: where longjmp goes and where the message is written. */
typedef struct {
  jmp_buf jump;
  char message[MESSAGE_LEN];
} error_target;

static _Thread_local error_target *current_target;

struct hub_t2 {
  struct jpeg_decompress_struct cinfo;
  struct jpeg_error_mgr jerr;
  int started;                  /* jpeg_start_decompress has run */

  /* Ring of decoded iMCU rows. */
  JBLOCKROW ring;               /* RING_SLOTS * blocks_per_slot blocks */
  size_t blocks_per_slot;
  JDIMENSION rows_decoded;      /* iMCU rows the entropy side finished */
  JDIMENSION rows_consumed;     /* iMCU rows the output side finished */
  JDIMENSION output_row;        /* iMCU row the output side works on (output thread only) */
  int failed;
  int output_waiting;
  int entropy_waiting;
  pthread_mutex_t lock;
  pthread_cond_t cond;

  /* Output thread. */
  unsigned char *out;
  size_t pitch;
  int output_status;
  error_target output_error;
};

static void t2_error_exit(j_common_ptr cinfo)
{
  error_target *t = current_target;
  (*cinfo->err->format_message) (cinfo, t->message);
  longjmp(t->jump, 1);
}

static void t2_output_message(j_common_ptr cinfo)
{
  error_target *t = current_target;
  (*cinfo->err->format_message) (cinfo, t->message);
}

static void t2_emit_message(j_common_ptr cinfo, int msg_level)
{
  if (msg_level < 0) {
    /* A warning (corrupt or truncated data): an error here, as with TJPARAM_STOPONWARNING. */
    error_target *t = current_target;
    (*cinfo->err->format_message) (cinfo, t->message);
    longjmp(t->jump, 1);
  }
}

static void raise_failed(hub_t2 *h)
{
  pthread_mutex_lock(&h->lock);
  h->failed = 1;
  pthread_cond_broadcast(&h->cond);
  pthread_mutex_unlock(&h->lock);
}

/* MCU rows in iMCU row `row` (as jdcoefct.c's start_iMCU_row). */
static int mcu_rows_in(j_decompress_ptr cinfo, JDIMENSION row)
{
  if (cinfo->comps_in_scan > 1)
    return 1;
  if (row < cinfo->total_iMCU_rows - 1)
    return cinfo->cur_comp_info[0]->v_samp_factor;
  return cinfo->cur_comp_info[0]->last_row_height;
}

/*
 * The coefficient controller's output step: decompress_onepass of jdcoefct.c (libjpeg-turbo
 * 3.1) with the entropy decoding replaced by waiting for the row in the ring. Runs on the
 * output thread, called by the library's main controller from jpeg_read_scanlines.
 */
static int ring_decompress_data(j_decompress_ptr cinfo, JSAMPIMAGE output_buf)
{
  hub_t2 *h = (hub_t2 *)cinfo->client_data;
  JDIMENSION row = h->output_row;
  JDIMENSION MCU_col_num;
  JDIMENSION last_MCU_col = cinfo->MCUs_per_row - 1;
  JDIMENSION last_iMCU_row = cinfo->total_iMCU_rows - 1;
  int blkn, ci, xindex, yindex, yoffset, useful_width, rows;
  JSAMPARRAY output_ptr;
  JDIMENSION start_col, output_col;
  jpeg_component_info *compptr;
  inverse_DCT_method_ptr inverse_DCT;
  JBLOCKROW slot;

  pthread_mutex_lock(&h->lock);
  while (h->rows_decoded <= row && !h->failed) {
    h->output_waiting = 1;
    pthread_cond_wait(&h->cond, &h->lock);
    h->output_waiting = 0;
  }
  if (h->failed) {
    pthread_mutex_unlock(&h->lock);
    snprintf(current_target->message, MESSAGE_LEN, "stopped: the entropy decoder failed");
    longjmp(current_target->jump, 1);
  }
  pthread_mutex_unlock(&h->lock);

  slot = h->ring + (size_t)(row % RING_SLOTS) * h->blocks_per_slot;
  rows = mcu_rows_in(cinfo, row);
  for (yoffset = 0; yoffset < rows; yoffset++) {
    for (MCU_col_num = 0; MCU_col_num <= last_MCU_col; MCU_col_num++) {
      JBLOCKROW mcu = slot + ((size_t)yoffset * cinfo->MCUs_per_row + MCU_col_num) *
                             cinfo->blocks_in_MCU;
      blkn = 0;
      for (ci = 0; ci < cinfo->comps_in_scan; ci++) {
        compptr = cinfo->cur_comp_info[ci];
        if (!compptr->component_needed) {
          blkn += compptr->MCU_blocks;
          continue;
        }
        inverse_DCT = cinfo->idct->inverse_DCT[compptr->component_index];
        useful_width = (MCU_col_num < last_MCU_col) ?
                       compptr->MCU_width : compptr->last_col_width;
        output_ptr = output_buf[compptr->component_index] +
                     yoffset * compptr->DCT_scaled_size;
        start_col = MCU_col_num * compptr->MCU_sample_width;
        for (yindex = 0; yindex < compptr->MCU_height; yindex++) {
          if (row < last_iMCU_row ||
              yoffset + yindex < compptr->last_row_height) {
            output_col = start_col;
            for (xindex = 0; xindex < useful_width; xindex++) {
              (*inverse_DCT) (cinfo, compptr, (JCOEFPTR)mcu[blkn + xindex],
                              output_ptr, output_col);
              output_col += compptr->DCT_scaled_size;
            }
          }
          blkn += compptr->MCU_width;
          output_ptr += compptr->DCT_scaled_size;
        }
      }
    }
  }

  pthread_mutex_lock(&h->lock);
  h->rows_consumed = row + 1;
  if (h->entropy_waiting)
    pthread_cond_broadcast(&h->cond);
  pthread_mutex_unlock(&h->lock);
  h->output_row = row + 1;
  cinfo->output_iMCU_row++;
  if (row < last_iMCU_row)
    return JPEG_ROW_COMPLETED;
  return JPEG_SCAN_COMPLETED;
}

static void *output_thread(void *arg)
{
  hub_t2 *h = (hub_t2 *)arg;
  j_decompress_ptr cinfo = &h->cinfo;
  current_target = &h->output_error;
  if (setjmp(h->output_error.jump)) {
    h->output_status = HUB_T2_ERROR;
    raise_failed(h);
    return NULL;
  }
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW rows[16];
    JDIMENSION n = cinfo->output_height - cinfo->output_scanline, i;
    if (n > 16)
      n = 16;
    for (i = 0; i < n; i++)
      rows[i] = h->out + (size_t)(cinfo->output_scanline + i) * h->pitch;
    jpeg_read_scanlines(cinfo, rows, n);
  }
  h->output_status = HUB_T2_OK;
  return NULL;
}

/* The input side: every iMCU row's MCUs decoded into the ring (the calling thread). */
static void entropy_decode_all(hub_t2 *h)
{
  j_decompress_ptr cinfo = &h->cinfo;
  JDIMENSION row, col;
  JBLOCKROW MCU_buffer[D_MAX_BLOCKS_IN_MCU];
  int b, y, rows;

  for (row = 0; row < cinfo->total_iMCU_rows; row++) {
    JBLOCKROW slot = h->ring + (size_t)(row % RING_SLOTS) * h->blocks_per_slot;
    pthread_mutex_lock(&h->lock);
    while (row >= h->rows_consumed + RING_SLOTS && !h->failed) {
      h->entropy_waiting = 1;
      pthread_cond_wait(&h->cond, &h->lock);
      h->entropy_waiting = 0;
    }
    if (h->failed) {
      pthread_mutex_unlock(&h->lock);
      return;
    }
    pthread_mutex_unlock(&h->lock);

    rows = mcu_rows_in(cinfo, row);
    memset(slot, 0, (size_t)rows * cinfo->MCUs_per_row * cinfo->blocks_in_MCU *
                    sizeof(JBLOCK));
    for (y = 0; y < rows; y++) {
      for (col = 0; col < cinfo->MCUs_per_row; col++) {
        JBLOCKROW mcu = slot + ((size_t)y * cinfo->MCUs_per_row + col) *
                               cinfo->blocks_in_MCU;
        for (b = 0; b < cinfo->blocks_in_MCU; b++)
          MCU_buffer[b] = mcu + b;
        if (!(*cinfo->entropy->decode_mcu) (cinfo, MCU_buffer))
          ERREXIT(cinfo, JERR_CANT_SUSPEND);
      }
    }
    cinfo->input_iMCU_row = row + 1;

    pthread_mutex_lock(&h->lock);
    h->rows_decoded = row + 1;
    if (h->output_waiting)
      pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
  }
}

/*
 * Reads the header and prepares the decode at 1/`denom`. Returns HUB_T2_OK with the output size
 * in *width and *height, HUB_T2_DECLINED when the file is not one this path takes (nothing is
 * wrong with it necessarily; use TurboJPEG), or HUB_T2_ERROR with libjpeg's message in
 * `message`. On OK the caller must call hub_t2_run and then hub_t2_close; otherwise only
 * hub_t2_close.
 */
hub_t2 *hub_t2_new(void)
{
  hub_t2 *h = (hub_t2 *)calloc(1, sizeof(hub_t2));
  if (h == NULL)
    return NULL;
  pthread_mutex_init(&h->lock, NULL);
  pthread_cond_init(&h->cond, NULL);
  return h;
}

int hub_t2_open(hub_t2 *h, const unsigned char *jpeg, unsigned long len, int denom,
                unsigned long long max_pixels, unsigned int *width, unsigned int *height,
                char *message, size_t message_len)
{
  error_target target;
  j_decompress_ptr cinfo = &h->cinfo;
  size_t rows_per_slot;
  int status;

  target.message[0] = 0;
  current_target = &target;
  if (setjmp(target.jump)) {
    snprintf(message, message_len, "%s", target.message);
    current_target = NULL;
    return HUB_T2_ERROR;
  }
  cinfo->err = jpeg_std_error(&h->jerr);
  h->jerr.error_exit = t2_error_exit;
  h->jerr.output_message = t2_output_message;
  h->jerr.emit_message = t2_emit_message;
  jpeg_create_decompress(cinfo);
  cinfo->client_data = h;
  jpeg_mem_src(cinfo, jpeg, len);
  jpeg_read_header(cinfo, TRUE);

  status = HUB_T2_OK;
  if (cinfo->data_precision != 8 || cinfo->progressive_mode || cinfo->master->lossless ||
      jpeg_has_multiple_scans(cinfo) ||
      !((cinfo->num_components == 1 && cinfo->jpeg_color_space == JCS_GRAYSCALE) ||
        (cinfo->num_components == 3 && (cinfo->jpeg_color_space == JCS_YCbCr ||
                                        cinfo->jpeg_color_space == JCS_RGB))))
    status = HUB_T2_DECLINED;
  else if (max_pixels != 0 &&
           (unsigned long long)cinfo->image_width * cinfo->image_height > max_pixels) {
    snprintf(message, message_len, "Image is too large");
    current_target = NULL;
    return HUB_T2_ERROR;
  }
  if (status != HUB_T2_OK) {
    current_target = NULL;
    return status;
  }

  /* The settings tj3Decompress8 uses for TJPF_RGB with its defaults. */
  cinfo->out_color_space = JCS_EXT_RGB;
  cinfo->do_fancy_upsampling = TRUE;
  cinfo->dct_method = JDCT_ISLOW;
  cinfo->scale_num = 1;
  cinfo->scale_denom = (unsigned int)denom;
  jpeg_start_decompress(cinfo);
  h->started = 1;
  if (cinfo->comps_in_scan != cinfo->num_components || cinfo->blocks_in_MCU < 1 ||
      cinfo->blocks_in_MCU > D_MAX_BLOCKS_IN_MCU) {
    current_target = NULL;
    return HUB_T2_DECLINED;
  }

  rows_per_slot = cinfo->comps_in_scan > 1 ? 1 : (size_t)cinfo->cur_comp_info[0]->v_samp_factor;
  h->blocks_per_slot = rows_per_slot * cinfo->MCUs_per_row * cinfo->blocks_in_MCU;
  h->ring = (JBLOCKROW)(*cinfo->mem->alloc_large) ((j_common_ptr)cinfo, JPOOL_IMAGE,
                                                   RING_SLOTS * h->blocks_per_slot *
                                                   sizeof(JBLOCK));
  cinfo->coef->decompress_data = ring_decompress_data;
  *width = cinfo->output_width;
  *height = cinfo->output_height;
  current_target = NULL;
  return HUB_T2_OK;
}

/*
 * Decodes into `out` (pitch bytes per row, at least output_width * 3, output_height rows).
 * Returns HUB_T2_OK or HUB_T2_ERROR with the message of the first thread that failed.
 */
int hub_t2_run(hub_t2 *h, unsigned char *out, size_t pitch, char *message, size_t message_len)
{
  error_target target;
  j_decompress_ptr cinfo = &h->cinfo;
  pthread_t thread;
  int entropy_failed = 0;

  if (!h->started || pitch < (size_t)cinfo->output_width * 3) {
    snprintf(message, message_len, "the decoder was not prepared for this buffer");
    return HUB_T2_ERROR;
  }
  h->out = out;
  h->pitch = pitch;
  h->output_status = HUB_T2_ERROR;
  h->output_error.message[0] = 0;
  if (pthread_create(&thread, NULL, output_thread, h) != 0) {
    snprintf(message, message_len, "could not start the output thread");
    return HUB_T2_ERROR;
  }

  target.message[0] = 0;
  current_target = &target;
  if (setjmp(target.jump)) {
    entropy_failed = 1;
    raise_failed(h);
  } else {
    entropy_decode_all(h);
  }
  pthread_join(thread, NULL);
  if (entropy_failed) {
    snprintf(message, message_len, "%s", target.message);
    current_target = NULL;
    return HUB_T2_ERROR;
  }
  if (h->output_status != HUB_T2_OK) {
    snprintf(message, message_len, "%s", h->output_error.message);
    current_target = NULL;
    return HUB_T2_ERROR;
  }

  /* Both sides are done: finish as the library would (the markers up to EOI are read here,
   * so trailing garbage or a missing EOI is reported as with TurboJPEG). */
  if (setjmp(target.jump)) {
    snprintf(message, message_len, "%s", target.message);
    current_target = NULL;
    return HUB_T2_ERROR;
  }
  (*cinfo->inputctl->finish_input_pass) (cinfo);
  jpeg_finish_decompress(cinfo);
  h->started = 0;
  current_target = NULL;
  return HUB_T2_OK;
}

void hub_t2_free(hub_t2 *h)
{
  if (h == NULL)
    return;
  /* jpeg_destroy_decompress cannot fail (it only frees memory). */
  if (h->cinfo.err != NULL)
    jpeg_destroy_decompress(&h->cinfo);
  pthread_mutex_destroy(&h->lock);
  pthread_cond_destroy(&h->cond);
  free(h);
}
