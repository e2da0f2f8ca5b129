/* libhmmn: the HMMN video object segmentation runtime behind a C ABI.
 *
 * Open a model from an hmmn-export folder, start a video from its first frame and label map,
 * then step the following frames. The memory protocol (docs/protocol.md) runs inside.
 *
 * Every call returns an hmmn_status; on anything but HMMN_OK, hmmn_last_error() says what was
 * wrong and what to do (a message of the calling thread, valid until its next libhmmn call).
 * Handles are opaque. Threads: a model may be shared by videos stepped on different threads;
 * one video must be used by one thread at a time. A video keeps its model's graphs alive, so
 * closing the model before its videos is allowed.
 */
#ifndef HMMN_HMMN_H
#define HMMN_HMMN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* HMMN_API: exported when building libhmmn (its build defines HMMN_BUILDING_LIBRARY), imported
 * when using it. On Windows that is dllexport / dllimport (define HMMN_STATIC to link the static
 * library: neither); elsewhere default visibility both ways (the library hides everything else). */
#if defined(_WIN32)
#if defined(HMMN_BUILDING_LIBRARY)
#define HMMN_API __declspec(dllexport)
#elif defined(HMMN_STATIC)
#define HMMN_API
#else
#define HMMN_API __declspec(dllimport)
#endif
#else
#define HMMN_API __attribute__((visibility("default")))
#endif

#define HMMN_ABI_VERSION 1

typedef enum hmmn_status {
  HMMN_OK = 0,
  HMMN_ERROR_ARGUMENT = 1, /* a null pointer, a size or a label map that does not fit */
  HMMN_ERROR_ARTIFACT = 2, /* the export folder, its manifest or a graph cannot be used */
  HMMN_ERROR_BACKEND = 3,  /* the runner (ONNX Runtime) cannot be loaded or failed */
  HMMN_ERROR_STATE = 4,    /* reserved for calls out of order (a null video is HMMN_ERROR_ARGUMENT) */
  HMMN_ERROR_INTERNAL = 5  /* a bug or out of memory: please report it */
} hmmn_status;

typedef enum hmmn_pixel_format { HMMN_RGB8 = 0, HMMN_BGR8 = 1 } hmmn_pixel_format;

/* An 8-bit, 3-channel image as video decoders hand it out. */
typedef struct hmmn_image {
  const uint8_t* pixels; /* row-major, 3 bytes per pixel */
  int32_t width, height;
  int64_t stride; /* bytes from one row to the next, >= 3 * width */
  int32_t format; /* hmmn_pixel_format */
} hmmn_image;

/* A label map: 0 is the background, any other id is an object (ids are kept, gaps allowed). */
typedef struct hmmn_labels {
  const int32_t* ids;
  int32_t width, height;
  int64_t stride; /* elements (not bytes) from one row to the next, >= width */
} hmmn_labels;

/* Options, versioned by size: struct_size is set by hmmn_options_init to the size this libhmmn
 * knows. New fields are only ever added at the end. hmmn_model_open takes any struct_size from
 * HMMN_OPTIONS_SIZE_V1 (the fields of the first release) up: fields a caller's older header
 * lacks keep their defaults; fields past the ones this libhmmn knows (a newer header) must be
 * zero, their default, or the call fails with HMMN_ERROR_ARGUMENT (nothing is silently ignored). */
typedef struct hmmn_options {
  uint32_t struct_size;    /* bytes of the caller's hmmn_options; set by hmmn_options_init */
  const char* backend;     /* "onnxruntime" (NULL: the same) */
  const char* device;      /* "cpu" (NULL: the same) */
  const char* ort_library; /* libonnxruntime.so.* path; NULL: $HMMN_ORT_LIBRARY, then the configured one */
  int32_t threads;         /* intra-op threads; 0: the runner's default */
  int32_t capacity;        /* 1/16 slots per object group; 0: the manifest's */
  int32_t mem_every;       /* keep every n-th frame; 0: the manifest's */
} hmmn_options;

/* The bytes of the first release's fields: the smallest struct_size accepted. */
#define HMMN_OPTIONS_SIZE_V1 (offsetof(hmmn_options, mem_every) + sizeof(int32_t))

typedef struct hmmn_model hmmn_model;
typedef struct hmmn_video hmmn_video;

HMMN_API const char* hmmn_last_error(void);
HMMN_API const char* hmmn_version(void);
HMMN_API hmmn_status hmmn_options_init(hmmn_options* options);

/* folder: an hmmn-export folder (manifest.json and the four .onnx graphs). options may be NULL. */
HMMN_API hmmn_status hmmn_model_open(const char* folder, const hmmn_options* options, hmmn_model** out);
HMMN_API hmmn_status hmmn_model_close(hmmn_model* model);

/* A new video from its first frame and label map (same width and height). */
HMMN_API hmmn_status hmmn_video_start(hmmn_model* model, const hmmn_image* frame, const hmmn_labels* labels,
                                      hmmn_video** out);

/* Segment the next frame. labels_out: width*height ids (row-major, the label map's ids);
 * probs_out: NULL, or (objects+1)*width*height floats, background first then objects in the
 * order of hmmn_video_objects. The counts are the buffers' lengths in elements. */
HMMN_API hmmn_status hmmn_video_step(hmmn_video* video, const hmmn_image* frame, int32_t* labels_out,
                                     size_t labels_count, float* probs_out, size_t probs_count);

/* Objects that appear on the last segmented (or the first) frame: their label map for that
 * frame, ids not yet in the video. They win over the prediction where their mask is. */
HMMN_API hmmn_status hmmn_video_add_objects(hmmn_video* video, const hmmn_labels* labels);

/* Forget objects; their probability goes to the background. */
HMMN_API hmmn_status hmmn_video_remove_objects(hmmn_video* video, const int32_t* ids, size_t count);

/* The video's object ids in channel order; *count gets their number (ids may be NULL to ask). */
HMMN_API hmmn_status hmmn_video_objects(const hmmn_video* video, int32_t* ids, size_t capacity, size_t* count);

HMMN_API hmmn_status hmmn_video_close(hmmn_video* video);

#ifdef __cplusplus
}
#endif

#endif /* HMMN_HMMN_H */
