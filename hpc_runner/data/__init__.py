"""Data sources a job spec names: TIFF, Zarr, NumPy and HDF5 files, checked and loaded.

Imports no other hpc_runner package. Reading libraries (numpy, tifffile, h5py, zarr, careamics'
image stacks) are imported inside the functions that read data, so checking a spec on the login
node stays light.
"""
