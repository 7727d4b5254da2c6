// Scan page: show the scan's NIfTI volume with NiiVue (vendor/niivue/niivue.umd.js, loaded
// first) and wire the toolbar: layout, contrast min/max, volume slider for 4D data.
// The container's data-viewer-state is "loading", then "ready", "failed" or "no-webgl2", so
// browser tests and stylesheets can tell what happened.
(function () {
  "use strict";

  var container = document.querySelector(".volume-viewer[data-volume-url]");
  if (!container) {
    return;
  }
  var canvas = container.querySelector("canvas.volume-canvas");
  var status = container.querySelector("[data-viewer-status]");
  var locationOutput = container.querySelector("[data-viewer-output=location]");
  var layoutSelect = container.querySelector("[data-viewer-control=layout]");
  var minInput = container.querySelector("[data-viewer-control=contrast-min]");
  var maxInput = container.querySelector("[data-viewer-control=contrast-max]");
  var resetButton = container.querySelector("[data-viewer-control=contrast-reset]");
  var frameBox = container.querySelector("[data-viewer-frame]");
  var frameSlider = container.querySelector("[data-viewer-control=frame]");
  var frameOutput = container.querySelector("[data-viewer-output=frame]");

  // NiiVue's SLICE_TYPE values (AXIAL 0, CORONAL 1, SAGITTAL 2, MULTIPLANAR 3, RENDER 4).
  var LAYOUTS = { axial: 0, coronal: 1, sagittal: 2, multiplanar: 3, render: 4 };

  // Crosshair steps in voxels [x, y, z] per key, while the canvas has the keyboard focus.
  var CROSSHAIR_KEYS = {
    ArrowLeft: [-1, 0, 0],
    ArrowRight: [1, 0, 0],
    ArrowUp: [0, 0, 1],
    ArrowDown: [0, 0, -1],
    PageUp: [0, 1, 0],
    PageDown: [0, -1, 0]
  };

  function setState(state, message) {
    container.dataset.viewerState = state;
    status.textContent = message;
    status.classList.toggle("text-danger", state === "failed" || state === "no-webgl2");
  }

  function hasWebGL2() {
    try {
      return Boolean(document.createElement("canvas").getContext("webgl2"));
    } catch (error) {
      return false;
    }
  }

  // Round for the number inputs, so a range such as 0-812.4999 stays readable.
  function roundForInput(value) {
    return Number(Number(value).toPrecision(6));
  }

  function showContrast(volume) {
    minInput.value = roundForInput(volume.cal_min);
    maxInput.value = roundForInput(volume.cal_max);
  }

  function showFrame(volume) {
    frameSlider.value = volume.frame4D;
    frameOutput.textContent = "volume " + (volume.frame4D + 1) + " of " + volume.nFrame4D;
  }

  function enableControls() {
    [layoutSelect, minInput, maxInput, resetButton].forEach(function (control) {
      control.disabled = false;
    });
  }

  function applyContrast(viewer, volume) {
    var low = parseFloat(minInput.value);
    var high = parseFloat(maxInput.value);
    if (!isFinite(low) || !isFinite(high) || low >= high) {
      setState("ready", "Contrast min must be a number below contrast max; the contrast is unchanged.");
      showContrast(volume);
      return;
    }
    volume.cal_min = low;
    volume.cal_max = high;
    viewer.updateGLVolume();
    setState("ready", "");
  }

  function wireControls(viewer, volume) {
    var initialMin = volume.cal_min;
    var initialMax = volume.cal_max;

    layoutSelect.addEventListener("change", function () {
      viewer.setSliceType(LAYOUTS[layoutSelect.value]);
    });
    minInput.addEventListener("change", function () {
      applyContrast(viewer, volume);
    });
    maxInput.addEventListener("change", function () {
      applyContrast(viewer, volume);
    });
    resetButton.addEventListener("click", function () {
      volume.cal_min = initialMin;
      volume.cal_max = initialMax;
      viewer.updateGLVolume();
      showContrast(volume);
    });

    if (volume.nFrame4D > 1) {
      frameSlider.max = volume.nFrame4D - 1;
      frameSlider.addEventListener("input", function () {
        viewer.setFrame4D(volume.id, Number(frameSlider.value));
      });
      showFrame(volume);
      frameBox.hidden = false;
    }

    canvas.addEventListener("keydown", function (event) {
      var step = CROSSHAIR_KEYS[event.key];
      if (!step || event.altKey || event.ctrlKey || event.metaKey) {
        return;
      }
      // The page must neither scroll nor treat the key as a shortcut of its own.
      event.preventDefault();
      event.stopPropagation();
      viewer.moveCrosshairInVox(step[0], step[1], step[2]);
    });
  }

  async function start() {
    if (!hasWebGL2()) {
      setState(
        "no-webgl2",
        "This browser cannot show the volume because WebGL2 is unavailable or turned off. " +
          "Turn on hardware acceleration or use a current Firefox, Chrome or Safari, or review the QC images below."
      );
      return;
    }
    if (!window.niivue || !window.niivue.Niivue) {
      setState("failed", "The NiiVue viewer script did not load, so the volume cannot be shown. Reload the page.");
      return;
    }

    setState("loading", "Loading the volume…");
    var viewer = new window.niivue.Niivue({
      backColor: [0, 0, 0, 1],
      // A crosshair width in voxels (the default) covers the anatomy of low-resolution scans,
      // so it is set as a share of the field of view: 0.5 % draws a line of one or two pixels.
      crosshairWidth: 0.5,
      crosshairWidthUnit: "percent",
      dragAndDropEnabled: false,
      isResizeCanvas: true,
      logLevel: "warn",
      loadingText: ""
    });
    // NiiVue binds its own keys on the canvas (arrows step through 4D volumes, letters move the
    // crosshair, "?" opens an alert), which would clash with the page's keyboard shortcuts.
    // Replacing the listener before attachToCanvas binds it leaves only the keys wired below.
    viewer.keyDownListener = function () {};
    viewer.onLocationChange = function (location) {
      locationOutput.textContent = location && location.string ? location.string : "";
    };
    // Called when right-dragging or double-clicking changes the contrast.
    viewer.onIntensityChange = showContrast;
    viewer.onFrameChange = showFrame;
    // For the browser console and the browser tests.
    container.niivue = viewer;

    try {
      await viewer.attachToCanvas(canvas);
      await viewer.loadVolumes([{ url: container.dataset.volumeUrl, name: container.dataset.volumeName }]);
    } catch (error) {
      setState("failed", "The volume could not be loaded: " + (error && error.message ? error.message : error) + ". Reload the page, or download the file below.");
      return;
    }
    var volume = viewer.volumes[0];
    if (!volume) {
      setState("failed", "The file loaded but contains no volume NiiVue can show. Download it below to check it.");
      return;
    }
    showContrast(volume);
    wireControls(viewer, volume);
    enableControls();
    setState("ready", "");
  }

  start();
})();
